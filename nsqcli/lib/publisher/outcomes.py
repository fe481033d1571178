"""What nsqd answered, turned into the publisher's exact accounting.

:class:`Outcomes` is a part of :class:`~nsqcli.lib.publisher.engine.PublishEngine`: a
:class:`~nsqcli.lib.publisher.conn.Destination` reports each batch as acknowledged, rejected
(``E_*``: a limit to learn, a retry, or a fatal error) or lost with its connection; every record
number ends in exactly one of ``on_acknowledged``, ``on_given_up`` or ``on_skipped``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .batch import Batch, Limits, Numbers, cut_batches, limit_from_error, split_oversized
from .config import PublisherConfig
from .errors import NsqdRefusedError, PublishError, RecordTooLargeError
from .report import PublishReport

if TYPE_CHECKING:  # pragma: no cover
    from .conn import Destination

#: a callback given the numbers of records with one outcome (a range when they are contiguous)
NumbersCallback = Callable[[Sequence[int]], None]

_logger = logging.getLogger("nsqcli.lib.publisher")


class Outcomes:
    """Results from the destinations; see the module docstring."""

    config: PublisherConfig
    limits: Limits
    report: PublishReport
    log: Callable[[str], None]
    clock: Callable[[], float]
    on_acknowledged: NumbersCallback | None
    on_given_up: NumbersCallback | None
    on_skipped: NumbersCallback | None
    _fan_out: bool
    _ready: deque[Batch]
    _outstanding: int
    _changed: asyncio.Event
    _stopped: bool
    _abandoned: bool

    if TYPE_CHECKING:  # provided by PublishEngine
        def _pump(self) -> None: ...
        def _encode(self, records: list[bytes], numbers: Numbers) -> Batch: ...

    # ---- from Destination -------------------------------------------------------------------

    def batch_acknowledged(self, dest: Destination, batch: Batch) -> None:
        self._outcome(batch, True)
        self._pump()

    def batch_lost(self, dest: Destination, batch: Batch, exc: BaseException) -> None:
        """The connection died with ``batch`` unanswered: send it again (at-least-once)."""
        if batch.failed_since is None:
            batch.failed_since = self.clock()
        if self._abandoned:
            self._outcome(batch, False)
        elif self._fan_out:
            dest.queue.appendleft(batch)
        else:
            self._ready.appendleft(batch)
        self._changed.set()

    def batch_rejected(self, dest: Destination, batch: Batch, exc: Any) -> None:
        """nsqd answered ``E_*`` for this batch (and closes the connection after it)."""
        code = getattr(exc, "code", "")
        limit = limit_from_error(getattr(exc, "description", ""))
        limits = self.limits
        if code == "E_BAD_MESSAGE" and limit and limits.learn_msg_size(limit):
            self.log(f"{dest.address}: nsqd's max-msg-size is {limit}; re-batching")
            self._recut(dest, batch)
        elif code == "E_BAD_BODY" and limit and limit < limits.max_body_size:
            limits.max_body_size = limit
            self.log(f"{dest.address}: nsqd's max-body-size is {limit}; re-batching")
            self._recut(dest, batch)
        elif code in ("E_BAD_BODY", "E_BAD_MESSAGE") and len(batch) > 1:
            limits.batch_count = max(1, len(batch) // 2)
            self._recut(dest, batch)
        elif code == "E_BAD_BODY" and limit and limits.learn_msg_size(limit - 8):
            self._recut(dest, batch)  # one record too large even for an MPUB body of its own
        elif code in ("E_PUB_FAILED", "E_MPUB_FAILED", "E_DPUB_FAILED"):
            self.batch_lost(dest, batch, exc)  # nsqd is exiting or unhealthy: retry
            return
        else:
            self._stop(NsqdRefusedError(dest.address, exc, self.config.topic))
            self._outcome(batch, False)
        self._pump()
        self._changed.set()

    # ---- re-cutting under learned limits ----------------------------------------------------

    def _recut(self, dest: Destination, batch: Batch) -> None:
        """Send a rejected batch again to the same nsqd, cut under the newly learned limits."""
        top = batch.parent or batch
        limit = self.limits.msg_limit
        records = batch.records
        kept, kept_numbers, oversized = split_oversized(records, batch.numbers, limit)
        if oversized and not self.config.skip_oversized:
            index, number = oversized[0]  # records before it still go out; it and the rest fail
            self._stop(RecordTooLargeError(number, len(records[index]), limit), abandon=False)
            rest = batch.numbers.slice(index, len(records)).all(len(records) - index)
            self._exclude(top, records[index:], rest, failed=True)
            kept, kept_numbers = kept[:index], kept_numbers[:index]
        else:
            self._log_skipped([(number, len(records[index])) for index, number in oversized])
            for index, number in oversized:
                self._exclude(top, [records[index]], [number], failed=False)
        numbers = Numbers(0, kept_numbers)
        pieces: list[Batch] = []
        if self._abandoned:
            if kept:
                top.failed = True
        else:
            pieces = [self._encode(kept[a:b], numbers.slice(a, b))
                      for a, b in cut_batches(kept, self.limits)]
        for piece in pieces:
            piece.parent = top
        top.pending += len(pieces)  # each piece is one more answer the top batch waits for
        queue = dest.queue if self._fan_out else self._ready
        queue.extendleft(reversed(pieces))
        self._outcome(batch, True)  # the rejected send is replaced by its pieces

    def _exclude(self, top: Batch, records: list[bytes], numbers: list[int], failed: bool) -> None:
        """Take records out of ``top``'s accounting: skipped as oversized, or given up now."""
        if top.skipped is None:
            top.skipped = set()
        new = [(n, r) for n, r in zip(numbers, records) if n not in top.skipped]
        top.skipped.update(n for n, _ in new)
        self.report.submitted -= len(new)
        if failed:
            self._fail_records([r for _, r in new], Numbers(0, [n for n, _ in new]))
        elif new:
            self.report.skipped_oversized += len(new)
            self._notify(self.on_skipped, [n for n, _ in new])

    def _skip_oversized(self, oversized: list[tuple[int, int]]) -> None:
        """Records ``(number, size)`` skipped before submission (``skip_oversized``)."""
        self._log_skipped(oversized)
        self.report.skipped_oversized += len(oversized)
        self._notify(self.on_skipped, [number for number, _ in oversized])

    def _log_skipped(self, oversized: list[tuple[int, int]]) -> None:
        limit = self.limits.msg_limit
        for number, size in oversized:
            self.log(f"record {number} skipped: {size} bytes > max-msg-size {limit}")

    # ---- final answers ----------------------------------------------------------------------

    def _outcome(self, batch: Batch, ok: bool) -> None:
        """One final answer for ``batch`` from one nsqd; pieces of a re-cut batch count for it."""
        top = batch.parent or batch
        if not ok:
            top.failed = True
        top.pending -= 1
        if top.pending <= 0:
            self._resolve(top)

    def _resolve(self, batch: Batch) -> None:
        count = batch.count
        self._outstanding -= count
        skipped = batch.skipped  # numbers taken out of this batch's accounting by _exclude
        if skipped:
            numbers: Sequence[int] = [n for n in batch.numbers.all(count) if n not in skipped]
        else:
            numbers = batch.numbers.sequence(count)
        if batch.failed:
            self.report.given_up += len(numbers)
            if self.config.keep_failed:
                self.report.failed.extend(
                    (n, r) for n, r in zip(batch.numbers.all(count), batch.records)
                    if not skipped or n not in skipped)
            self._notify(self.on_given_up, numbers)
        else:
            self.report.acknowledged += len(numbers)
            if numbers:
                self._notify(self.on_acknowledged, numbers)
        batch.release()
        self._changed.set()

    def _fail_records(self, records: list[bytes], numbers: Numbers) -> None:
        if not records:
            return
        count = len(records)
        self.report.submitted += count
        self.report.given_up += count
        if self.config.keep_failed:
            self.report.failed.extend(zip(numbers.all(count), records))
        self._notify(self.on_given_up, numbers.sequence(count))

    def _notify(self, callback: NumbersCallback | None, numbers: Sequence[int]) -> None:
        """Call a user's callback; one that raises is logged and must not break the accounting."""
        if callback is None:
            return
        try:
            callback(numbers)
        except Exception:  # noqa: BLE001 - the user's code: report it, keep counting
            _logger.exception("publisher callback %r failed", callback)

    def _stop(self, error: PublishError, abandon: bool = True) -> None:
        """Accept no more input; ``abandon`` also gives up on everything not yet acknowledged."""
        if self.report.error is None:
            self.report.error = error
        self._stopped = True
        self._abandoned = self._abandoned or abandon
        self._changed.set()
