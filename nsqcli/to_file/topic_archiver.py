"""One topic of nsq-to-file: messages -> archive file, FIN only once their bytes are durable.

The guarantee (as the Go ``nsq_to_file``): a message is written, kept in the current batch, and
finished (FIN) only after a successful :meth:`TopicArchiver.sync` -- which flushes, ends the gzip
member and fsyncs. Sync happens when the batch reaches max-in-flight, when the reader is starved,
on every sync-interval tick, on rotation, on SIGHUP and at shutdown -- and, beyond the Go tool,
when no message has arrived for a short while (see :meth:`TopicArchiver.idle_check`), so a drained channel is acknowledged
promptly whatever the sync interval.

With ``sync_in_background`` (what the tool uses) a slow fdatasync runs on a worker thread while
the loop keeps receiving and writing: a sync starts once half of max-in-flight waits (or the
reader is starved, or idle), and each batch is finished when *its own* sync completes -- so nsqd
never stops sending for the length of an fsync. Handing a sync to a thread costs ~0.1 ms of CPU
(thread wake-ups, GIL hand-offs), more than a fast fsync blocks the loop: while fsyncs average
under ``background_above`` seconds they stay on the loop, once per max-in-flight batch. One
sync runs at a time: after a failed fsync Linux may report success to a later one for data that
never reached the disk, so nothing is synced (or finished) after a failure.

The first error (write, sync, open, close or move) is fatal: nothing more is finished, the
unsynced messages are requeued (REQ 0, no backoff) so nsqd redelivers them at once instead of
after its message timeout, and :attr:`TopicArchiver.error` holds the exception for the tool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, Callable

from nsqcli.archive.files import ArchiveFile
from nsqcli.archive.format import JsonlEncoder, check_format
from nsqcli.lib.message import MessageAnsweredError, finish_all

logger = logging.getLogger(__name__)

#: How often the tool calls idle_check(): pending messages are synced once no message arrived
#: for a whole interval, i.e. within 2 intervals of the last write.
IDLE_CHECK_INTERVAL = 0.05
#: Average fsync time (seconds) above which syncs run on a worker thread (sync_in_background).
#: At 0.1-0.3 ms (SSDs, VMs) the loop-side sync is faster: on the bench peer 132k msg/s against
#: 122k with the worker, whose hand-offs and half-size batches (twice the fsyncs) cost more than
#: the stall; the worker pays off once an fsync blocks for a millisecond or more (spinning
#: disks, network storage), where the loop would otherwise stop for that long every batch.
BACKGROUND_ABOVE = 0.001


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
        sync_in_background: bool = False,
        sync_executor: Executor | None = None,
        background_above: float = BACKGROUND_ABOVE,
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
        self._raw = fmt == "raw"
        self.pending: list[Any] = []  # written, not yet in a sync
        # background mode: the batch whose fdatasync runs on the worker thread, and its Future
        self.syncing: list[Any] | None = None
        self._syncing_future: Future | None = None
        # runs the background fdatasyncs; by default a one-thread pool made on first use
        self._executor = sync_executor
        self._own_executor = sync_executor is None
        self.sync_in_background = sync_in_background
        self.background_above = background_above
        self.sync_seconds = 0.0  # moving average of the fsync times (background: until seen)
        self._background = False  # syncs go to the worker now (see _note_sync_time)
        # a batch is synced once this many messages wait: all in flight (foreground), or half
        self.batch_size = max(1, max_in_flight // 2) if sync_in_background else max_in_flight
        self._sync_at = max_in_flight
        self._note_sync_time(0.0)
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
            if self._raw:
                rotated = self.file.write(message.body + b"\n")  # encode_raw, inlined
            else:
                rotated = self.file.write(self._encode(message))
        except Exception as exc:  # noqa: BLE001 - any failure stops the archive
            self._requeue(message)
            self._fail(exc)
            return
        self.written += 1
        pending = self.pending
        pending.append(message)
        count = len(pending)
        if rotated:
            self.sync()
        elif self.syncing is None and (  # else the running sync's completion starts the next
                count >= self._sync_at or (count >= self._starved_floor and self.is_starved())):
            if self._background:
                self._start_background_sync()
            else:
                self.sync()

    def sync(self) -> bool:
        """fsync what was written, then FIN it; False after a failure (see :attr:`error`).
        Blocks: a background sync still running is waited for (and its batch finished) first."""
        if self.error is not None:
            return False
        if self.syncing is not None and not self._finish_background():
            return False
        if not self.pending:
            return True
        started = time.perf_counter()
        try:
            self.file.sync()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return False
        self._note_sync_time(time.perf_counter() - started)
        batch, self.pending = self.pending, []
        self._finish(batch)
        return True

    def _note_sync_time(self, seconds: float) -> None:
        """Average the fsync times; slow ones move the syncs to the worker thread."""
        self.sync_seconds += (seconds - self.sync_seconds) * 0.2
        self._background = self.sync_in_background and self.sync_seconds >= self.background_above
        self._sync_at = self.batch_size if self._background else self.max_in_flight

    def _finish(self, batch: list) -> None:
        """FIN a batch whose bytes are durable: one piece of output per connection."""
        self.syncs += 1
        self._starved_floor = self.starved_floor()
        try:
            finish_all(batch)
        except MessageAnsweredError:  # one was answered elsewhere (nothing sent): one by one
            for message in batch:
                if not message.has_responded():
                    message.finish()
        self.finished += len(batch)

    # -- background syncs --------------------------------------------------------------------

    def _start_background_sync(self) -> None:
        """Hand the pending batch's bytes to the kernel and fdatasync them on the worker thread;
        the batch is finished by :meth:`_background_done`, on the loop."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="nsq-to-file-sync")
        try:
            future = self.file.sync_in_background(self._executor)
        except Exception as exc:  # noqa: BLE001 - writing or a previous sync failed
            self._fail(exc)
            return
        if future is None:  # no file open (cannot happen with messages pending; be safe)
            self.sync()
            return
        batch, self.pending = self.pending, []
        self.syncing, self._syncing_future = batch, future
        loop = asyncio.get_running_loop()

        def on_done(_: Future) -> None:  # on the worker thread
            try:
                loop.call_soon_threadsafe(self._background_done, batch)
            except RuntimeError:  # the loop is closed: close() already waited for this sync
                pass
        future.add_done_callback(on_done)

    def _background_done(self, batch: list) -> None:
        if self.syncing is not batch:  # already finished by sync(), or failed
            return
        if self._finish_background() and self._background and self.pending and (
                len(self.pending) >= self._sync_at or self.is_starved()):
            self._start_background_sync()

    def _finish_background(self) -> bool:
        """Wait for the running background sync; FIN its batch (True) or fail (False)."""
        batch, future = self.syncing, self._syncing_future
        try:
            self.file.wait_background()
            # the file may have waited for it already (on a rotation)
            seconds = future.result() if future is not None else None
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)  # requeues the batch too: it is still self.syncing
            return False
        self.syncing = self._syncing_future = None
        if isinstance(seconds, float):
            self._note_sync_time(seconds)
        self._finish(batch or [])
        return True

    # -- timers and signals ------------------------------------------------------------------

    def idle_check(self) -> None:
        """Called every IDLE_CHECK_INTERVAL: sync when messages wait and none arrived since the
        previous call (a clock read per message would cost more than this timer)."""
        if self.pending and self.written == self._written_at_check:
            if not self._background:
                self.sync()
            elif self.syncing is None:  # else at the next check
                self._start_background_sync()
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
        if self._executor is not None and self._own_executor:
            self._executor.shutdown(wait=False)
            self._executor = None

    # -- failure -----------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        if self.error is not None:
            return
        self.error = exc
        logger.debug("[%s] stopping after: %s", self.topic, exc)
        pending, self.pending = (self.syncing or []) + self.pending, []
        self.syncing = self._syncing_future = None
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
        return len(self.pending) + len(self.syncing or ())
