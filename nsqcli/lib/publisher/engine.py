"""The publish engine behind :class:`nsqcli.lib.Publisher` (and so ``nsq-pub``/``nsq-replay``).

Records go in with :meth:`PublishEngine.publish` (a list at a time) or :meth:`publish_one`,
numbered 1.. in input order (empty records skipped but counted in the numbering); they are cut
into MPUB batches by count and bytes within nsqd's limits (DPUB per record with ``defer_ms``) and
sent over :class:`nsqcli.lib.conn.AsyncConn` with several batches in flight per connection.
Delivery is honest: a record counts as acknowledged only when nsqd answered ``OK`` for it (in
fan-out mode: every nsqd did). On connection loss the connection is re-established and
unacknowledged batches are resent (at-least-once) until ``retry_timeout``; then they are given up
and counted. What nsqd answers is handled by :class:`~nsqcli.lib.publisher.outcomes.Outcomes`,
the retry timeout by :class:`~nsqcli.lib.publisher.retry.RetryTimeouts`.

Batching adapts to the input: a partial batch is sealed as soon as a connection has nothing in
flight, so a slow trickle of records is published at once while a fast stream fills whole
batches.

Limits: ``max_msg_size``/``max_body_size`` as configured; otherwise batches are cut for nsqd's
default 5 MiB body and no record is refused client-side (nsqd does not announce its
max-msg-size, and may allow more than the default 1 MiB). An ``E_BAD_MESSAGE``/``E_BAD_BODY``
answer teaches the real limit (nsqd states it), the batch is re-cut and resent, and a record over
the limit is reported by number (or skipped and counted with ``skip_oversized``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Callable

from nsqcli.lib.error_text import error_text
from nsqcli.lib.protocol.errors import LocalProtocolError

from .batch import MPUB_OVERHEAD_PER_RECORD, Batch, Limits, Numbers, cut_batches, encode_batch
from .batch import join_numbers, split_oversized
from .config import FAN_OUT, PublisherConfig
from .conn import ConnectFunc, Destination, connect_nsqd
from .errors import NsqdUnreachableError, RecordTooLargeError
from .outcomes import NumbersCallback, Outcomes
from .report import PublishReport
from .retry import RetryTimeouts

__all__ = ["PublishEngine"]

_logger = logging.getLogger("nsqcli.lib.publisher")


class PublishEngine(Outcomes, RetryTimeouts):
    """See the module docstring. Not thread-safe: use it from one event loop."""

    def __init__(
        self,
        config: PublisherConfig,
        *,
        connect: ConnectFunc = connect_nsqd,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] | None = None,
        on_acknowledged: NumbersCallback | None = None,
        on_given_up: NumbersCallback | None = None,
        on_skipped: NumbersCallback | None = None,
    ) -> None:
        self.config = config
        self.on_acknowledged = on_acknowledged
        self.on_given_up = on_given_up
        self.on_skipped = on_skipped
        self.limits = Limits(config.max_msg_size, config.max_body_size, config.batch_size,
                             config.batch_bytes)
        if config.defer_ms is not None:
            self.limits.batch_count = 64
        self._topic = config.topic.encode("utf-8")
        self.clock = clock
        self.log = log or _logger.warning
        self._window = config.batches_in_flight * (16 if config.defer_ms is not None else 1)
        self.destinations = [
            Destination(address, config.conn_kwargs, config.connect_timeout, connect, self)
            for address in config.addresses
        ]
        self._fan_out = config.mode == FAN_OUT
        self._backlog_limit = self._window * len(self.destinations) + 1
        self.report = PublishReport()
        self._seen = 0  # records seen, empty ones included (for numbering)
        self._partial: list[bytes] = []
        self._partial_numbers = Numbers(0)
        self._partial_bytes = 0  # MPUB body bytes of the partial batch (without the count)
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
            if isinstance(exc, LocalProtocolError):  # our own bad option (a TLS file)
                await self._shutdown()
                raise exc
        if failures and (self._fan_out or len(failures) == len(self.destinations)):
            await self._shutdown()
            dest, exc = failures[0]
            raise NsqdUnreachableError(dest.address, exc, self.config.topic)
        for dest, exc in failures:
            self.log(f"{dest.address}: {error_text(exc)}; retrying in the background")
            dest.connection_lost(exc)
        self._arm_watchdog()

    async def flush(self) -> None:
        """Publish what is buffered and wait for every answer (or give-up)."""
        self._seal_partial()
        while self._outstanding > 0:
            self._changed.clear()
            self._pump()
            if self._outstanding == 0:
                break
            await self._changed.wait()
        self.report.failed.sort(key=lambda item: item[0])

    async def close(self) -> PublishReport:
        """:meth:`flush`, then close every connection; the report."""
        await self.flush()
        self._stop_watchdog()
        await self._shutdown()
        return self.report

    async def _shutdown(self) -> None:
        await asyncio.gather(*(dest.shutdown() for dest in self.destinations))

    @property
    def stopped(self) -> bool:
        """True once publishing stopped early (fatal error or retry timeout): stop reading input."""
        return self._stopped

    @property
    def outstanding(self) -> int:
        return self._outstanding

    # ---- input --------------------------------------------------------------------------------

    async def publish(self, records: list[bytes]) -> range:
        """Submit records (numbered in order); waits while too much is in flight.

        Returns their numbers. Once publishing has stopped (:attr:`stopped`) the records are
        given up at once, never sent.
        """
        base = self._seen
        self._seen += len(records)
        numbers = Numbers(base + 1)
        if b"" in records:
            listed = [base + 1 + i for i, record in enumerate(records) if record]
            empty = [base + 1 + i for i, record in enumerate(records) if not record]
            self.report.skipped_empty += len(empty)
            self._notify(self.on_skipped, empty)
            records = [record for record in records if record]
            numbers = Numbers(listed[0] if listed else 0, listed)
        await self._submit(records, numbers)
        return range(base + 1, self._seen + 1)

    async def publish_one(self, record: bytes) -> int:
        """Submit one record; its number. The fast path of :meth:`publish` for one record."""
        self._seen += 1
        number = self._seen
        if not record:
            self.report.skipped_empty += 1
            self._notify(self.on_skipped, range(number, number + 1))
        elif self._stopped or self.config.rate is not None or len(record) > self.limits.msg_limit:
            await self._submit([record], Numbers(number))
        elif self._enqueue_one(record, number) and self._queued() > self._backlog_limit:
            await self._backpressure()
        return number

    async def _submit(self, records: list[bytes], numbers: Numbers) -> None:
        if self._stopped:  # counted (and kept for the report), never sent
            self._fail_records(records, numbers)
            return
        if not records:
            return
        if max(map(len, records)) > self.limits.msg_limit:
            records, numbers = self._drop_oversized(records, numbers)
            if self._stopped:
                return
        if self.config.rate is None:
            self._enqueue(records, numbers)
            await self._backpressure()
        else:
            await self._enqueue_at_rate(records, numbers)

    def _drop_oversized(self, records: list[bytes], numbers: Numbers) -> tuple[list[bytes], Numbers]:
        """Before submission: skip (and count) records over the limit, or stop at the first one."""
        limit = self.limits.msg_limit
        kept, kept_numbers, oversized = split_oversized(records, numbers, limit)
        if not self.config.skip_oversized:
            index, number = oversized[0]  # the records before it still go out
            self._enqueue(kept[:index], Numbers(0, kept_numbers[:index]))
            self._stop(RecordTooLargeError(number, len(records[index]), limit), abandon=False)
            self._fail_records(records[index:], numbers.slice(index, len(records)))
            return [], Numbers(0, [])
        self._skip_oversized([(number, len(records[index])) for index, number in oversized])
        return kept, Numbers(0, kept_numbers)

    async def _enqueue_at_rate(self, records: list[bytes], numbers: Numbers) -> None:
        rate = float(self.config.rate or 1)
        burst = max(1.0, rate)
        start = 0
        while start < len(records):
            if self._stopped:
                self._fail_records(records[start:], numbers.slice(start, len(records)))
                return
            now = self.clock()
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
            partial = self._partial
            records = partial + records
            numbers = join_numbers(self._partial_numbers, len(partial), numbers, len(records))
            self._partial, self._partial_numbers = [], Numbers(0)
        slices = list(cut_batches(records, self.limits))
        last_start, last_stop = slices[-1]
        if last_stop - last_start < self.limits.max_count:
            slices.pop()  # not full: keep it open until more records come or a connection idles
            self._partial = records[last_start:last_stop]
            self._partial_numbers = numbers.slice(last_start, last_stop)
            self._partial_bytes = sum(map(len, self._partial)) + MPUB_OVERHEAD_PER_RECORD * len(
                self._partial)
        for start, stop in slices:
            self._add_batch(self._encode(records[start:stop], numbers.slice(start, stop)))
        self._pump()

    def _enqueue_one(self, record: bytes, number: int) -> bool:
        """Add one record to the partial batch; True when that sealed a batch."""
        self.report.submitted += 1
        self._outstanding += 1
        size = len(record) + MPUB_OVERHEAD_PER_RECORD
        sealed = False
        if self._partial and self._partial_bytes + size > self.limits.body_budget:
            self._seal_partial()
            sealed = True
        partial = self._partial
        fresh = not partial
        self._partial_numbers.append(number, len(partial))
        partial.append(record)
        self._partial_bytes += size
        if len(partial) >= self.limits.max_count:
            self._seal_partial()
            sealed = True
        if sealed or fresh:  # otherwise nothing changed for _pump: no connection was idle
            self._pump()
        return sealed

    def _encode(self, records: list[bytes], numbers: Numbers) -> Batch:
        return encode_batch(self._topic, records, numbers, self.config.defer_ms)

    def _seal_partial(self) -> None:
        if self._partial:
            records, numbers = self._partial, self._partial_numbers
            self._partial, self._partial_numbers, self._partial_bytes = [], Numbers(0), 0
            self._add_batch(self._encode(records, numbers))

    def _add_batch(self, batch: Batch) -> None:
        if self._fan_out:
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
        while not self._stopped and self._queued() > self._backlog_limit:
            self._changed.clear()
            await self._changed.wait()

    def _queued(self) -> int:
        if self._fan_out:
            return max(len(d.queue) + d.in_flight for d in self.destinations)
        return len(self._ready) + sum(d.in_flight for d in self.destinations)

    # ---- sending --------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Hand ready batches to connections with room.

        The partial batch is sealed only when a connection has nothing at all in flight (Nagle
        style): a trickle of input goes out at once, a fast stream keeps filling whole batches.
        """
        window = self._window
        if self._fan_out:
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

    def connection_up(self, dest: Destination) -> None:
        self._pump()
        self._changed.set()
