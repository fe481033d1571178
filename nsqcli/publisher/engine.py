"""The fast publish engine shared by ``nsq-pub`` and ``nsq-replay``.

Records go in with :meth:`Publisher.publish` (a list at a time, numbered 1.. in input order,
empty records skipped but counted in the numbering); they are cut into MPUB batches by count and
bytes within nsqd's limits (DPUB per record with ``defer_ms``), and sent over
:class:`nsqcli.lib.conn.AsyncConn` with several batches in flight per connection. Delivery is
honest: a record counts as acknowledged only when nsqd answered ``OK`` for it (in fan-out mode:
every nsqd did). On connection loss the connection is re-established and unacknowledged batches
are resent (at-least-once) until ``retry_timeout``; then they are given up, counted, and handed
to the failed-record sink. :meth:`Publisher.close` returns a :class:`PublishReport` with the
exact accounting.

Batching adapts to the input: a partial batch is sealed as soon as a connection has room, so a
slow trickle of records is published at once while a fast stream fills whole batches.

Limits: ``max_msg_size``/``max_body_size`` as configured; otherwise batches are cut for nsqd's
default 5 MiB body and no record is refused client-side (nsqd does not announce its
max-msg-size, and may allow more than the default 1 MiB). An ``E_BAD_MESSAGE``/``E_BAD_BODY``
answer teaches the real limit (nsqd states it), the batch is re-cut and resent, and a record over
the limit is reported by number (or skipped and counted with ``skip_oversized``).

Use: ``p = Publisher(PublisherConfig(topic="t", addresses=["127.0.0.1:4150"]))``, then
``await p.start()``, ``await p.publish([b"a", b"b"])`` ..., ``report = await p.close()``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Awaitable, Callable

from nsqcli.cli.exit_codes import AddressError, ToolError, error_text
from nsqcli.lib.protocol.errors import LocalProtocolError
from nsqcli.publisher.batch import (
    Batch, Limits, Numbers, cut_batches, encode_batch, join_numbers, limit_from_error, oversized_error,
    split_oversized,
)
from nsqcli.publisher.conn import Destination, connect_nsqd
from nsqcli.publisher.retry import RetryTimeouts

from nsqcli.publisher.config import FAN_OUT, ROUND_ROBIN, PublisherConfig, PublishReport

__all__ = ["FAN_OUT", "ROUND_ROBIN", "Publisher", "PublisherConfig", "PublishReport"]
ConnectFunc = Callable[[str, dict, float], Awaitable[Any]]


class Publisher(RetryTimeouts):
    """See the module docstring. Not thread-safe: use it from one event loop."""

    def __init__(
        self,
        config: PublisherConfig,
        *,
        connect: ConnectFunc = connect_nsqd,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] | None = None,
        on_acknowledged: Callable[[Numbers, int], None] | None = None,
    ) -> None:
        self.config = config
        # called with (numbers, count) of every batch nsqd acknowledged (nsq-replay checkpoints)
        self._on_acknowledged = on_acknowledged
        self.limits = Limits(config.max_msg_size, config.max_body_size, config.batch_count,
                             config.batch_bytes)
        if config.defer_ms is not None:
            self.limits.batch_count = 64
        self._topic = config.topic.encode("utf-8")
        self._clock = clock
        self._log = log or (lambda message: None)
        self._window = max(1, config.window) * (16 if config.defer_ms is not None else 1)
        self.destinations = [
            Destination(address, config.conn_kwargs, config.connect_timeout, connect, self)
            for address in config.addresses
        ]
        self.report = PublishReport()
        self._seen = 0  # records seen, empty ones included (for numbering)
        self._partial: list[bytes] = []
        self._partial_numbers = Numbers(0)
        self._ready: deque[Batch] = deque()  # round-robin: batches waiting for any connection
        self._outstanding = 0  # records submitted and not yet resolved
        self._rr = 0
        self._changed = asyncio.Event()
        self._stopped = False  # a fatal error or give-up: accept nothing more
        self._abandoned = False  # ... and stop resending what is not acknowledged yet
        self._tokens = 0.0
        self._token_time: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to every nsqd. Round-robin needs one reachable nsqd, fan-out needs all."""
        results = await asyncio.gather(*(d.connect_once() for d in self.destinations),
                                       return_exceptions=True)
        failures = [(d, r) for d, r in zip(self.destinations, results) if isinstance(r, BaseException)]
        for dest, exc in failures:
            if isinstance(exc, LocalProtocolError):  # our own bad option (a TLS file): exit 2
                for other in self.destinations:
                    other.shutdown()
                raise exc
        needed_all = self.config.mode == FAN_OUT
        if failures and (needed_all or len(failures) == len(self.destinations)):
            for dest in self.destinations:
                dest.shutdown()
            dest, exc = failures[0]
            raise AddressError(dest.address, exc, f"connecting to publish to topic {self.config.topic}")
        for dest, exc in failures:
            self._log(f"{dest.address}: {error_text(exc)}; retrying in the background")
            dest.connection_lost(exc)
        self._arm_watchdog()

    async def close(self) -> PublishReport:
        """Publish what is buffered, wait for every answer (or give-up), close; the report."""
        self._seal_partial()
        self._pump()
        while self._outstanding > 0:
            self._changed.clear()
            self._pump()
            if self._outstanding == 0:
                break
            await self._changed.wait()
        self._stop_watchdog()
        for dest in self.destinations:
            dest.shutdown()
        self.report.failed.sort(key=lambda item: item[0])
        return self.report

    @property
    def stopped(self) -> bool:
        """True once publishing stopped early (fatal error or retry timeout): stop reading input."""
        return self._stopped

    @property
    def outstanding(self) -> int:
        return self._outstanding

    # ---- input --------------------------------------------------------------------------------

    async def publish(self, records: list[bytes]) -> bool:
        """Submit records (numbered in order); waits while too much is in flight.

        Returns False when publishing has stopped (the records given are then counted as not
        acknowledged), so the caller stops reading input.
        """
        base = self._seen
        self._seen += len(records)
        numbers = Numbers(base + 1)
        if b"" in records:
            listed = [base + 1 + i for i, record in enumerate(records) if record]
            self.report.skipped_empty += len(records) - len(listed)
            records = [record for record in records if record]
            numbers = Numbers(listed[0] if listed else 0, listed)
        if self._stopped:  # counted (and kept for the failed-record sink), never sent
            self._fail_records(records, numbers)
            return False
        if not records:
            return True
        if max(map(len, records)) > self.limits.msg_limit:
            records, numbers = self._drop_oversized(records, numbers)
            if self._stopped:
                return False
        if self.config.rate is None:
            self._enqueue(records, numbers)
            await self._backpressure()
        else:
            await self._enqueue_at_rate(records, numbers)
        return not self._stopped

    def _drop_oversized(self, records: list[bytes], numbers: Numbers) -> tuple[list[bytes], Numbers]:
        """Before submission: skip (and count) records over the limit, or stop at the first one."""
        limit = self.limits.msg_limit
        kept, kept_numbers, oversized = split_oversized(records, numbers, limit)
        if not self.config.skip_oversized:
            index, number = oversized[0]  # the records before it still go out
            self._enqueue(kept[:index], Numbers(0, kept_numbers[:index]))
            self._stop(oversized_error(number, len(records[index]), limit), abandon=False)
            self._fail_records(records[index:], numbers.slice(index, len(records)))
            return [], Numbers(0, [])
        for index, number in oversized:
            self.report.skipped_oversized += 1
            self._log(f"record {number} skipped: {len(records[index])} bytes > max-msg-size "
                      f"{limit}")
        return kept, Numbers(0, kept_numbers)

    async def _enqueue_at_rate(self, records: list[bytes], numbers: Numbers) -> None:
        rate = float(self.config.rate or 1)
        burst = max(1.0, rate)
        start = 0
        while start < len(records):
            if self._stopped:
                self._fail_records(records[start:], numbers.slice(start, len(records)))
                return
            now = self._clock()
            if self._token_time is None:
                self._tokens = 1.0
            else:
                self._tokens = min(burst, self._tokens + (now - self._token_time) * rate)
            self._token_time = now
            take = min(len(records) - start, int(self._tokens))
            if take == 0:
                await asyncio.sleep((1.0 - self._tokens) / rate)
                continue
            self._tokens -= take
            self._enqueue(records[start:start + take], numbers.slice(start, start + take))
            start += take
            await self._backpressure()

    def _enqueue(self, records: list[bytes], numbers: Numbers) -> None:
        if not records:
            return
        self.report.submitted += len(records)
        self._outstanding += len(records)
        if self._partial:  # top up the partial batch first so batches stay full
            records, numbers = self._partial + records, join_numbers(
                self._partial_numbers, len(self._partial), numbers, len(records))
            self._partial, self._partial_numbers = [], Numbers(0)
        slices = list(cut_batches(records, self.limits))
        last_start, last_stop = slices[-1]
        if last_stop - last_start < self.limits.max_count:
            slices.pop()  # not full: keep it open until more records come or a connection idles
            self._partial = records[last_start:last_stop]
            self._partial_numbers = numbers.slice(last_start, last_stop)
        for start, stop in slices:
            self._add_batch(self._encode(records[start:stop], numbers.slice(start, stop)))
        self._pump()

    def _encode(self, records: list[bytes], numbers: Numbers) -> Batch:
        return encode_batch(self._topic, records, numbers, self.config.defer_ms)

    def _seal_partial(self) -> None:
        if self._partial:
            records, numbers = self._partial, self._partial_numbers
            self._partial, self._partial_numbers = [], Numbers(0)
            self._add_batch(self._encode(records, numbers))

    def _add_batch(self, batch: Batch) -> None:
        if self.config.mode == FAN_OUT:
            for dest in self.destinations:
                if dest.gave_up:
                    batch.failed = True  # this nsqd is gone: these records cannot be complete
                else:
                    batch.pending += 1
                    dest.queue.append(batch)
            if batch.pending == 0:
                batch.pending = 1
                self._outcome(batch, False)
        else:
            batch.pending = 1
            self._ready.append(batch)

    async def _backpressure(self) -> None:
        limit = self._window * len(self.destinations) + 1
        while not self._stopped and self._queued() > limit:
            self._changed.clear()
            await self._changed.wait()

    def _queued(self) -> int:
        if self.config.mode == FAN_OUT:
            return max(len(d.queue) + d.in_flight for d in self.destinations)
        return len(self._ready) + sum(d.in_flight for d in self.destinations)

    # ---- sending --------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Hand ready batches to connections with room.

        The partial batch is sealed only when a connection has nothing at all in flight (Nagle
        style): a trickle of input goes out at once, a fast stream keeps filling whole batches.
        """
        window = self._window
        if self.config.mode == FAN_OUT:
            for dest in self.destinations:
                if not dest.up:
                    continue
                if not dest.queue and self._partial and dest.in_flight == 0:
                    self._seal_partial()
                while dest.queue and dest.in_flight < window:
                    dest.send(dest.queue.popleft())
            return
        dests = self.destinations
        count = len(dests)
        while self._ready or self._partial:
            for _ in range(count):  # the next connection with room, in turn
                dest = dests[self._rr % count]
                self._rr += 1
                if dest.up and (dest.in_flight < window if self._ready else dest.in_flight == 0):
                    break
            else:
                return
            if not self._ready:
                self._seal_partial()
            dest.send(self._ready.popleft())

    # ---- results (called by Destination) --------------------------------------------------------

    def batch_acknowledged(self, dest: Destination, batch: Batch) -> None:
        self._outcome(batch, True)
        self._pump()

    def batch_lost(self, dest: Destination, batch: Batch, exc: BaseException) -> None:
        """The connection died with ``batch`` unanswered: send it again (at-least-once)."""
        if batch.failed_since is None:
            batch.failed_since = self._clock()
        if self._abandoned:
            self._outcome(batch, False)
        elif self.config.mode == FAN_OUT:
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
            self._log(f"{dest.address}: nsqd's max-msg-size is {limit}; re-batching")
            self._recut(dest, batch)
        elif code == "E_BAD_BODY" and limit and limit < limits.max_body_size:
            limits.max_body_size = limit
            self._log(f"{dest.address}: nsqd's max-body-size is {limit}; re-batching")
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
            self._stop(AddressError(dest.address, exc, f"publishing to topic {self.config.topic}"))
            self._outcome(batch, False)
        self._pump()
        self._changed.set()

    def _recut(self, dest: Destination, batch: Batch) -> None:
        """Send a rejected batch again to the same nsqd, cut under the newly learned limits."""
        top = batch.parent or batch
        limit = self.limits.msg_limit
        records = batch.records
        kept, kept_numbers, oversized = split_oversized(records, batch.numbers, limit)
        if oversized and not self.config.skip_oversized:
            index, number = oversized[0]  # records before it still go out; it and the rest fail
            self._stop(oversized_error(number, len(records[index]), limit), abandon=False)
            rest = batch.numbers.slice(index, len(records)).all(len(records) - index)
            self._exclude(top, records[index:], rest, failed=True)
            kept, kept_numbers = kept[:index], kept_numbers[:index]
        else:
            for index, number in oversized:
                self._log(f"record {number} skipped: {len(records[index])} bytes > "
                          f"max-msg-size {limit}")
                self._exclude(top, [records[index]], [number], failed=False)
        numbers = Numbers(0, kept_numbers)
        if self._abandoned:
            pieces = []
            if kept:
                top.failed = True
        else:
            pieces = [self._encode(kept[a:b], numbers.slice(a, b))
                      for a, b in cut_batches(kept, self.limits)]
        for piece in pieces:
            piece.parent = top
        top.pending += len(pieces)  # each piece is one more answer the top batch waits for
        queue = dest.queue if self.config.mode == FAN_OUT else self._ready
        queue.extendleft(reversed(pieces))
        self._outcome(batch, True)  # the rejected send is replaced by its pieces

    def _exclude(self, top: Batch, records: list[bytes], numbers: list[int], failed: bool) -> None:
        """Take records out of ``top``'s accounting: skipped as oversized, or failed now."""
        if top.skipped is None:
            top.skipped = set()
        new = [(n, r) for n, r in zip(numbers, records) if n not in top.skipped]
        top.skipped.update(n for n, _ in new)
        self.report.submitted -= len(new)
        if failed:
            self._fail_records([r for _, r in new], Numbers(0, [n for n, _ in new]))
        else:
            self.report.skipped_oversized += len(new)

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
        if skipped or batch.failed:
            records = batch.records
        if skipped:
            pairs = [(n, r) for n, r in zip(batch.numbers.all(count), records) if n not in skipped]
        if batch.failed:
            self.report.not_acknowledged += len(pairs) if skipped else count
            self.report.failed.extend(pairs if skipped else zip(batch.numbers.all(count), records))
        elif skipped:
            self.report.acknowledged += len(pairs)
            if self._on_acknowledged is not None and pairs:
                self._on_acknowledged(Numbers(0, [n for n, _ in pairs]), len(pairs))
        else:
            self.report.acknowledged += count
            if self._on_acknowledged is not None:
                self._on_acknowledged(batch.numbers, count)
        batch.release()
        self._changed.set()

    def _fail_records(self, records: list[bytes], numbers: Numbers) -> None:
        if not records:
            return
        self.report.submitted += len(records)
        self.report.not_acknowledged += len(records)
        self.report.failed.extend(zip(numbers.all(len(records)), records))

    def _stop(self, error: ToolError, abandon: bool = True) -> None:
        """Accept no more input; ``abandon`` also gives up on everything not yet acknowledged."""
        if self.report.error is None:
            self.report.error = error
        self._stopped = True
        self._abandoned = self._abandoned or abandon
        self._changed.set()

    def connection_up(self, dest: Destination) -> None:
        self._pump()
        self._changed.set()
