""":class:`Publisher`: bulk publishing with exact, per-record accounting (``nsqcli.lib.Publisher``)."""

from __future__ import annotations

from collections.abc import AsyncIterable
from itertools import islice
from types import TracebackType
from typing import TYPE_CHECKING, Callable, Iterable, Union

from nsqcli.lib.addresses import Address

from .config import DEFAULT_BATCH_BYTES, DEFAULT_BATCH_SIZE, DEFAULT_BATCHES_IN_FLIGHT
from .config import DEFAULT_CONNECT_TIMEOUT, DEFAULT_RETRY_TIMEOUT, ROUND_ROBIN, PublisherConfig
from .engine import PublishEngine
from .errors import RetryTimeoutError
from .outcomes import NumbersCallback
from .report import PublishReport

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

    from nsqcli.lib.conn_options import ConnKwargs

__all__ = ["Body", "Publisher"]

#: a message body: bytes (str is encoded as UTF-8)
Body = Union[bytes, bytearray, memoryview, str]
_BODY_TYPES = (bytes, bytearray, memoryview, str)


def _as_body(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)  # a copy: the caller may change its buffer after handing it over
    raise TypeError(f"a message body must be bytes or str, not {type(value).__name__}")


def _as_bodies(values: Iterable[Body]) -> list[bytes]:
    records = values if type(values) is list else list(values)
    if set(map(type, records)) <= {bytes}:  # a C loop (and True for no records)
        return records  # type: ignore[return-value]
    return [_as_body(record) for record in records]


class Publisher:
    """Publish many messages to one topic, as fast as nsqd takes them, and account for each.

    The engine of ``nsq-pub`` and ``nsq-replay``: records go out in MPUB batches cut within
    nsqd's limits (``batch_size`` records, ``batch_bytes``; DPUB per record with ``defer_ms``),
    ``batches_in_flight`` of them per connection. A connection that drops is re-established and
    its unanswered batches are resent until ``retry_timeout`` (at-least-once); then they are
    given up. nsqd's ``E_BAD_MESSAGE``/``E_BAD_BODY`` teach its size limits (it does not
    announce them): the batch is re-cut and resent, and a record over max-msg-size stops
    publishing with :class:`RecordTooLargeError` (or is skipped, with ``skip_oversized=True``).
    ``mode="fan-out"`` sends every record to every nsqd; ``"round-robin"`` spreads the batches.

    Records are numbered 1, 2, ... in the order given (across calls; empty ones, which nsqd
    refuses, are skipped but numbered). Each number ends in exactly one callback:
    ``on_acknowledged(numbers)`` once nsqd answered OK (fan-out: every nsqd did),
    ``on_given_up(numbers)`` when it never will, ``on_skipped(numbers)`` for empty and skipped
    oversized records. ``numbers`` is a ``range`` when contiguous, else a list. Callbacks run
    on the event loop, possibly before the ``publish()`` call that handed the records over
    returns: number the records yourself (the count of records handed in so far + 1), as a relay
    that acknowledges its source only after nsqd acknowledged does.

    Use::

        async with Publisher("events", ["127.0.0.1:4150"]) as publisher:
            await publisher.publish([b"a", b"b"])        # returns when there is room
            report = await publisher.publish_all(bodies)  # an (async) iterable; waits for nsqd

    ``publish()`` hands records over and returns once the publisher has room for more; it does
    not wait for nsqd. ``flush()``, ``publish_all()`` and ``close()`` wait until every record
    handed in was acknowledged or given up and return the :class:`PublishReport`. Leaving
    ``async with`` closes the publisher and raises the :class:`PublishError` that stopped it (or
    a :class:`RetryTimeoutError`) if any record was given up: no exception means nsqd
    acknowledged every record (skipped ones aside). ``start()``/``close()`` work without it.

    Arguments: ``topic``; ``nsqd_tcp_addresses`` (``"host:port"`` or a list); ``mode``;
    ``batch_size``; ``batch_bytes``; ``batches_in_flight``; ``rate`` (records per second, None:
    no limit); ``defer_ms``; ``retry_timeout`` and ``connect_timeout`` (seconds; the latter
    bounds each connection's TCP connect and handshake together, and AsyncConn's per-stage
    ``timeout`` with them); ``max_msg_size``/``max_body_size`` (nsqd's limits, when known;
    default: learned); ``skip_oversized``; ``keep_failed`` (keep given-up bodies in ``report.failed``); the three
    callbacks; ``log`` (diagnostic lines such as "reconnected"; default: the
    ``nsqcli.lib.publisher`` logger at WARNING); any other keyword goes to each
    :class:`AsyncConn` (``tls_v1``, ``snappy``, ``auth_secret``, ``user_agent``...).
    Not thread-safe: use it from one event loop.
    """

    def __init__(
        self,
        topic: str,
        nsqd_tcp_addresses: Address | Iterable[Address],
        *,
        mode: str = ROUND_ROBIN,
        batch_size: int = DEFAULT_BATCH_SIZE,  # 1000
        batch_bytes: int = DEFAULT_BATCH_BYTES,  # 256 KiB
        batches_in_flight: int = DEFAULT_BATCHES_IN_FLIGHT,  # 4
        rate: float | None = None,
        defer_ms: int | None = None,
        retry_timeout: float = DEFAULT_RETRY_TIMEOUT,  # 30 s
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,  # 5 s
        max_msg_size: int | None = None,
        max_body_size: int | None = None,
        skip_oversized: bool = False,
        keep_failed: bool = True,
        on_acknowledged: NumbersCallback | None = None,
        on_given_up: NumbersCallback | None = None,
        on_skipped: NumbersCallback | None = None,
        log: Callable[[str], None] | None = None,
        **conn_kwargs: Unpack[ConnKwargs],
    ) -> None:
        from nsqcli.lib.conn import AsyncConn
        from nsqcli.lib.writer_links import check_conn_kwargs

        check_conn_kwargs(conn_kwargs, AsyncConn, "Publisher")
        self.config = PublisherConfig(
            topic=topic, addresses=nsqd_tcp_addresses, mode=mode,  # type: ignore[arg-type]
            conn_kwargs=dict(conn_kwargs), max_msg_size=max_msg_size, max_body_size=max_body_size,
            batch_size=batch_size, batch_bytes=batch_bytes, batches_in_flight=batches_in_flight,
            rate=rate, defer_ms=defer_ms, retry_timeout=retry_timeout,
            connect_timeout=connect_timeout, skip_oversized=skip_oversized, keep_failed=keep_failed)
        self._engine = PublishEngine(self.config, log=log, on_acknowledged=on_acknowledged,
                                     on_given_up=on_given_up, on_skipped=on_skipped)
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        return (f"<Publisher topic={self.config.topic!r} nsqd={self.config.addresses} "
                f"outstanding={self.outstanding}>")

    # ---- state ----------------------------------------------------------------------------

    @property
    def report(self) -> PublishReport:
        """The live report (complete once nothing is outstanding)."""
        return self._engine.report

    @property
    def stopped(self) -> bool:
        """True once publishing stopped (``report.error`` says why): records handed in from
        then on are given up at once."""
        return self._engine.stopped

    @property
    def outstanding(self) -> int:
        """Records handed in and neither acknowledged nor given up yet."""
        return self._engine.outstanding

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the nsqds: round-robin needs one of them, fan-out every one; otherwise
        :class:`NsqdUnreachableError`. The others are retried in the background."""
        if self._closed:
            raise RuntimeError("this Publisher is closed (or failed to start): make a new one")
        if not self._started:
            self._started = True
            try:
                await self._engine.start()
            except BaseException:
                self._closed = True  # its connections are shut: it cannot publish
                raise

    async def flush(self) -> PublishReport:
        """Send what is buffered and wait until every record handed in was acknowledged or
        given up; a copy of the report."""
        if self._started:
            await self._engine.flush()
        return self._engine.report.copy()

    async def close(self) -> PublishReport:
        """:meth:`flush`, then close the connections; the report. Closing twice is harmless."""
        if self._started and not self._closed:
            self._closed = True
            return await self._engine.close()
        self._closed = True
        return self._engine.report

    async def __aenter__(self) -> "Publisher":
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        report = await self.close()
        if exc_type is None and not report.ok:
            error = report.error or RetryTimeoutError(
                f"{report.given_up} of {report.submitted} records were not acknowledged by nsqd")
            error.report = report
            raise error

    # ---- input -----------------------------------------------------------------------------

    async def publish(self, bodies: Body | Iterable[Body]) -> range:
        """Hand over one body or several; their record numbers.

        Returns when the publisher has room for more (a bounded number of batches waits for
        nsqd), not when nsqd acknowledged them. Once the publisher :attr:`stopped`, the
        records are given up at once (``on_given_up``), never sent.
        """
        if not self._started or self._closed:
            await self.start()
        if isinstance(bodies, _BODY_TYPES):
            number = await self._engine.publish_one(_as_body(bodies))
            return range(number, number + 1)
        return await self._engine.publish(_as_bodies(bodies))

    async def publish_all(
        self, source: AsyncIterable[Body | Iterable[Body]] | Iterable[Body | Iterable[Body]]
    ) -> PublishReport:
        """Publish everything ``source`` yields -- bodies, or batches (lists) of bodies -- then
        wait for nsqd's answers (:meth:`flush`); the report.

        An async iterable is handed over item by item (a slow source is published at once); a
        plain iterable is read ``batch_size`` items at a time. Reading stops early once the
        publisher :attr:`stopped`.
        """
        if isinstance(source, _BODY_TYPES):
            raise TypeError("publish_all() takes an iterable of bodies; publish() takes one body")
        if not self._started or self._closed:
            await self.start()
        engine = self._engine
        if isinstance(source, AsyncIterable):
            publish_one = engine.publish_one
            async for item in source:
                if type(item) is bytes:  # the common case, without a further coroutine
                    await publish_one(item)
                else:
                    await self._publish_item(item)
                if engine.stopped:
                    break
        else:
            items = iter(source)
            while not engine.stopped:
                chunk = list(islice(items, self.config.batch_size))
                if not chunk:
                    break
                if set(map(type, chunk)) <= {bytes}:
                    await engine.publish(chunk)  # type: ignore[arg-type]
                    continue
                for item in chunk:
                    await self._publish_item(item)
                    if engine.stopped:
                        break
        return await self.flush()

    async def _publish_item(self, item: Body | Iterable[Body]) -> None:
        if isinstance(item, _BODY_TYPES):
            await self._engine.publish_one(_as_body(item))
        else:
            await self._engine.publish(_as_bodies(item))
