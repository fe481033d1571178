"""One topic of nsq-to-file: messages -> archive file, FIN only once their bytes are durable.

The guarantee (as the Go ``nsq_to_file``): a message is written, kept in the current batch, and
finished (FIN) only after a successful :meth:`TopicArchiver.sync` -- which flushes, ends the gzip
member and fsyncs. Sync happens when the batch reaches max-in-flight, when the reader is starved,
on every sync-interval tick, on rotation, on SIGHUP and at shutdown -- and, beyond the Go tool,
when no message has arrived for a short while (see :meth:`TopicArchiver.idle_check`), so a drained channel is acknowledged
promptly whatever the sync interval.

The first error (write, sync, open, close or move) is fatal: nothing more is finished, the
unsynced messages are requeued (REQ 0, no backoff) so nsqd redelivers them at once instead of
after its message timeout, and :attr:`TopicArchiver.error` holds the exception for the tool.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from .archive_files import ArchiveFile
from .archive_format import JsonlEncoder, check_format

logger = logging.getLogger(__name__)

#: How often the tool calls idle_check(): pending messages are synced once no message arrived
#: for a whole interval, i.e. within 2 intervals of the last write.
IDLE_CHECK_INTERVAL = 0.05


def message_encoder(fmt: str, topic: str) -> Callable[[Any], bytes]:
    """message -> the bytes of its record in ``fmt``."""
    if check_format(fmt) == "raw":
        return lambda message: message.body + b"\n"  # encode_raw, inlined: the hot path
    encode = JsonlEncoder(topic).encode
    return lambda m: encode(m.id, m.timestamp, m.attempts, m.body)


class TopicArchiver:
    """Archives one topic's messages (see the module docstring); driven by one event loop."""

    def __init__(
        self,
        topic: str,
        file: ArchiveFile,
        *,
        fmt: str = "raw",
        max_in_flight: int = 200,
        skip_empty_files: bool = False,
        is_starved: Callable[[], bool] = lambda: False,
        starved_floor: Callable[[], int] = lambda: 1,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.topic = topic
        self.file = file
        self.max_in_flight = max_in_flight
        self.skip_empty_files = skip_empty_files
        self.is_starved = is_starved
        # is_starved() is only asked once this many messages wait: a lower bound (recomputed at
        # each sync) of the in-flight count at which the reader can be starved. Asking on every
        # message would cost ~10 % of the tool's CPU.
        self.starved_floor = starved_floor
        self._starved_floor = 1
        self._encode = message_encoder(fmt, topic)
        self.pending: list[Any] = []
        self._written_at_check = -1
        self.written = 0  # messages written
        self.finished = 0  # messages finished after a sync
        self.syncs = 0
        self.error: BaseException | None = None
        self.on_error: Callable[[BaseException], None] | None = None

    # -- messages ----------------------------------------------------------------------------

    def handle(self, message: Any) -> None:
        """The Reader's message handler: write now, answer after the next sync."""
        message.enable_async()
        if self.error is not None:
            self._requeue(message)
            return
        try:
            # a rotation closes (and so syncs) the previous file: its batch is durable
            rotated = self.file.write(self._encode(message))
        except Exception as exc:  # noqa: BLE001 - any failure stops the archive
            self._requeue(message)
            self._fail(exc)
            return
        self.written += 1
        pending = self.pending
        pending.append(message)
        count = len(pending)
        if rotated or count >= self.max_in_flight or (count >= self._starved_floor
                                                      and self.is_starved()):
            self.sync()

    def sync(self) -> bool:
        """fsync what was written, then FIN it; False after a failure (see :attr:`error`)."""
        if self.error is not None:
            return False
        if not self.pending:
            return True
        try:
            self.file.sync()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return False
        batch, self.pending = self.pending, []
        self.syncs += 1
        self._starved_floor = self.starved_floor()
        for message in batch:
            if not message.has_responded():
                message.finish()
        self.finished += len(batch)
        return True

    # -- timers and signals ------------------------------------------------------------------

    def idle_check(self) -> None:
        """Called every IDLE_CHECK_INTERVAL: sync when messages wait and none arrived since the
        previous call (a clock read per message would cost more than this timer)."""
        if self.pending and self.written == self._written_at_check:
            self.sync()
        self._written_at_check = self.written

    def tick(self) -> None:
        """The sync-interval timer: rotate when due (or just close with skip-empty-files)."""
        if self.error is not None:
            return
        try:
            if self.file.is_open and self.file.needs_rotation():
                if self.skip_empty_files:
                    self.file.close()
                else:
                    self.file.rotate()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return
        self.sync()

    def close_file(self) -> None:
        """SIGHUP: sync, then close (and move) the file; the next message opens a new one."""
        if self.sync():
            try:
                self.file.close()
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)

    def close(self) -> None:
        """Shutdown: final sync, close and move."""
        self.close_file()

    # -- failure -----------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        if self.error is not None:
            return
        self.error = exc
        logger.debug("[%s] stopping after: %s", self.topic, exc)
        pending, self.pending = self.pending, []
        for message in pending:
            self._requeue(message)
        self.file.abandon()
        if self.on_error is not None:
            self.on_error(exc)

    @staticmethod
    def _requeue(message: Any) -> None:
        try:
            if not message.has_responded():
                message.requeue(time_ms=0, backoff=False)
        except Exception:  # noqa: BLE001 - the connection may be gone; nsqd times it out then
            logger.debug("could not requeue %r", message, exc_info=True)

    @property
    def unacknowledged(self) -> int:
        return len(self.pending)
