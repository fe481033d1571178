"""The Reader's engine: connections, RDY, backoff and the graceful close.

:class:`ReaderCore` owns the connections to nsqd and applies the pure policies
(:class:`~nsqcli.lib.rdy.RdyPolicy`, :class:`~nsqcli.lib.backoff.BackoffWindow`) to them; the
public :class:`~nsqcli.lib.reader.Reader` adds argument checking and message handling on top.

Per message the engine does one comparison (is this connection at its RDY share?); the answers
(FIN/REQ) come back as the connection's ``resume``/``backoff``/``continue`` events, which cost one
call to the backoff window in normal operation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generator, Iterable, TypeVar

from tornado.ioloop import IOLoop, PeriodicCallback

from . import registry
from .addresses import format_address
from .backoff import BackoffAction, BackoffWindow
from .protocol.errors import ConnectionClosedError
from .rdy import RdyPolicy
from .reader_discovery import Discovery

if TYPE_CHECKING:
    from .conn import AsyncConn
    from .conn_options import ConnKwargs
    from .message import Message

logger = logging.getLogger("nsqcli.lib.reader")

_Self = TypeVar("_Self", bound="ReaderCore")

# "resume" (a FIN) is listened to only while it needs bookkeeping: see _refresh_fast_path
_CONN_EVENTS = ("ready", "message", "backoff", "continue", "close", "error", "heartbeat")


class _Done:
    """An already-finished awaitable (close() called with no event loop running)."""

    def __await__(self) -> Generator[Any, None, None]:
        return None
        yield  # pragma: no cover - makes this a generator


class ReaderCore:
    """Connections, RDY, backoff and close for one topic/channel (see the module docstring).

    Subclasses set ``topic``, ``channel``, ``name``, ``conn_kwargs``, ``max_in_flight`` and call
    :meth:`_init_core`; they implement ``_on_conn_message(conn, message)`` (the hot path, which
    calls :meth:`_ramp` when ``conn.rdy`` differs from a non-zero ``_ramp_share``) and
    ``heartbeat(conn)``.
    """

    topic: str
    channel: str
    name: str
    conn_kwargs: ConnKwargs
    max_in_flight: int

    def _init_core(self, policy: RdyPolicy, backoff: BackoffWindow, discovery: Discovery,
                   conn_class: type[AsyncConn], redistribute_interval: float,
                   close_timeout: float) -> None:
        #: subscribed connections by id (``host:port``), as pynsq's ``Reader.conns``
        self.conns: dict[str, AsyncConn] = {}
        self._connecting: dict[str, AsyncConn] = {}
        # dropped by lookupd -> their CLS acknowledgement; closed once their messages are answered
        self._retiring: dict[AsyncConn, asyncio.Future[bytes | None]] = {}
        self._policy = policy
        self._backoff = backoff
        self._discovery = discovery
        self._conn_class = conn_class
        self._redistribute_interval = redistribute_interval
        self.close_timeout = close_timeout
        self._ramp_share = 0  # RDY a connection ramps to on a message; 0 = do not ramp
        #: optional ``rdy_cap(conn, value) -> int``: the most RDY ``conn`` may get when the
        #: policy wants ``value`` (nsq-tail -n keeps nsqd from sending more than it needs)
        self.rdy_cap: Callable[[AsyncConn, int], int] | None = None
        self._quiet = True  # no backoff, no drain: a FIN needs no bookkeeping
        self._tick_timer: PeriodicCallback | None = None
        self._window_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[Any]] = set()  # running coroutine handlers
        self._started = False
        self._closing = False
        self._closed = False
        self._close_future: Awaitable[None] | None = None
        self._drained: asyncio.Event | None = None
        registry.register(self)
        try:
            asyncio.get_running_loop().call_soon(self._start)
        except RuntimeError:  # created before the loop runs (pynsq style, then nsq.run())
            IOLoop.current().add_callback(self._start)

    # ---- pynsq-compatible views -----------------------------------------------------------

    @property
    def total_rdy(self) -> int:
        return RdyPolicy.total(self.conns.values())

    @property
    def need_rdy_redistributed(self) -> bool:
        return self._policy.need_redistribute

    @property
    def backoff_window(self) -> BackoffWindow:
        return self._backoff

    def is_starved(self) -> bool:
        """True when some connection has in-flight messages at >= 85 % of its last RDY: time to
        process a batch (buffered messages will not grow further)."""
        return RdyPolicy.is_starved(self.conns.values())

    # ---- starting -------------------------------------------------------------------------

    def _start(self) -> None:
        if self._started or self._closing:
            return
        self._started = True
        logger.info("[%s] starting reader for %s/%s", self.name, self.topic, self.channel)
        self._tick_timer = PeriodicCallback(self._tick, self._redistribute_interval * 1000)
        self._tick_timer.start()
        self._discovery.start()

    def _connect(self, host: str, port: int) -> AsyncConn | None:
        """Open a connection to nsqd unless one exists or is being made; returns it or None."""
        if self._closing:
            return None
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        address = format_address(bare, port)
        if address in self.conns or address in self._connecting:
            return None
        conn = self._conn_class(bare, port, **self.conn_kwargs)
        for name in _CONN_EVENTS:
            conn.on(name, getattr(self, "_on_conn_" + name))
        if not self._quiet:
            conn.on("resume", self._on_conn_resume)
        self._connecting[conn.id] = conn
        conn.repeated_failure_text = self._discovery.failure_text.get(conn.id)
        logger.info("[%s:%s] connecting to nsqd", conn.id, self.name)
        conn.connect()
        return conn

    def _idle_since(self, address: str, since: float) -> bool:
        """True unless the connection to ``address`` received a message after ``since`` (wall
        time) or has one in flight; True when there is no subscribed connection."""
        conn = self.conns.get(address)
        return conn is None or (conn.in_flight <= 0 and conn.last_msg_timestamp <= since)

    # ---- connection events ----------------------------------------------------------------

    def _on_conn_ready(self, conn: AsyncConn, **_: object) -> None:
        if self._connecting.get(conn.id) is conn:
            del self._connecting[conn.id]
        if self._closing:
            conn.close()
            return
        if conn.id in self.conns:
            logger.warning("[%s:%s] already connected to this nsqd; closing the duplicate", conn.id, self.name)
            conn.off("close", self._on_conn_close)  # not a lost connection: nothing to reconnect
            conn.close()
            return
        subscribed = conn.subscribe(self.topic, self.channel)
        subscribed.add_done_callback(lambda future: self._on_subscribed(conn, future))
        if conn.max_rdy_count < self.max_in_flight:
            logger.warning("[%s:%s] nsqd max_rdy_count %d < max_in_flight %d: RDY is capped",
                           conn.id, self.name, conn.max_rdy_count, self.max_in_flight)
        self.conns[conn.id] = conn
        self._refresh_fast_path()
        window = self._backoff
        self._apply(self._policy.connection_added(
            list(self.conns.values()), conn, window.in_backoff, window.blocked))

    def _on_subscribed(self, conn: AsyncConn, future: asyncio.Future[bytes]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            self._discovery.connection_succeeded(conn.id)
        elif not self._closing:
            # the connection was lost before nsqd answered: its close is already logged as a
            # warning and a reconnect follows, so this is not an error of its own
            log = logger.debug if isinstance(error, ConnectionClosedError) else logger.error
            log("[%s:%s] SUB %s %s failed: %s", conn.id, self.name, self.topic, self.channel, error)

    def _on_conn_close(self, conn: AsyncConn, **_: object) -> None:
        if self._connecting.get(conn.id) is conn:
            del self._connecting[conn.id]
        active = self.conns.get(conn.id) is conn
        if active:
            del self.conns[conn.id]
            remaining = list(self.conns.values())
            self._policy.connection_removed(conn, remaining, self._backoff.in_backoff)
            self._refresh_fast_path()
        if conn in self._retiring:
            del self._retiring[conn]
            self._refresh_fast_path()
            self._check_drained()
            return
        if self._closing:
            self._check_drained()
            return
        if active:  # a failed attempt was already logged by the connection, with its cause
            logger.warning("[%s:%s] connection closed", conn.id, self.name)
        error = getattr(conn, "close_error", None)
        self._discovery.connection_closed(conn.host, conn.port,
                                          None if error is None else str(error))
        if active and not self._backoff.in_backoff:
            self._apply(self._policy.rebalance(list(self.conns.values()), time.time()))

    def _on_conn_error(self, conn: AsyncConn, error: BaseException | None = None, **_: object) -> None:
        logger.debug("[%s:%s] error: %s", conn.id, self.name, error)

    def _on_conn_heartbeat(self, conn: AsyncConn, **_: object) -> None:
        try:
            self.heartbeat(conn)
        except Exception:
            logger.exception("[%s:%s] heartbeat() hook failed", conn.id, self.name)

    def heartbeat(self, conn: AsyncConn) -> None:  # overridden by Reader
        pass

    def _on_conn_message(self, conn: AsyncConn, message: Message) -> None:
        """Dispatch one message to the handler: the Reader defines it."""
        raise TypeError(f"{type(self).__name__} must define _on_conn_message")

    # the answers to messages: FIN = success, REQ = failure, REQ(backoff=False) = neutral
    def _on_conn_resume(self, conn: AsyncConn, **_: object) -> None:
        if self._quiet:
            return
        if self._closing or self._retiring:
            self._check_drained()
        action = self._backoff.record(True)
        if action is not None and not self._closing:
            self._apply_backoff(action)

    def _on_conn_backoff(self, conn: AsyncConn, **_: object) -> None:
        self._on_result(False)

    def _on_conn_continue(self, conn: AsyncConn, **_: object) -> None:
        self._on_result(None)

    def _on_result(self, success: bool | None) -> None:
        if self._closing or self._retiring:
            self._check_drained()
            if self._closing:
                return
        action = self._backoff.record(success)
        if action is not None:
            self._apply_backoff(action)

    # ---- RDY ------------------------------------------------------------------------------

    def _rdy_allowed(self) -> bool:
        return True  # Reader consults the deprecated disabled() hook here

    def _apply(self, changes: Iterable[tuple[AsyncConn, int]]) -> None:
        allowed = None
        for conn, value in changes:
            if value:
                if allowed is None:
                    allowed = self._rdy_allowed()
                if not allowed:
                    continue
                if self.rdy_cap is not None:
                    value = self.rdy_cap(conn, value)
            if conn.rdy != value:
                try:
                    conn.send_rdy(value)
                except ValueError as exc:  # above max_rdy_count: the policy should prevent it
                    logger.error("[%s:%s] %s", conn.id, self.name, exc)

    def _refresh_fast_path(self) -> None:
        """Recompute what the per-message path needs: the RDY share to ramp to, and whether a
        FIN can skip the backoff and drain bookkeeping. Called on every state change."""
        n = len(self.conns)
        policy = self._policy
        window = self._backoff
        quiet = not (self._closing or self._retiring or window.in_backoff or window.strategy.in_backoff)
        if quiet != self._quiet:
            self._quiet = quiet
            # a FIN in normal operation needs no bookkeeping: the connections then skip the
            # resume event altogether instead of calling a listener that returns at once
            for conn in {*self.conns.values(), *self._connecting.values(), *self._retiring}:
                (conn.off if quiet else conn.on)("resume", self._on_conn_resume)
        if self._closing or self._backoff.in_backoff or policy.max_in_flight <= 0 or policy.redistributing(n):
            self._ramp_share = 0
        else:
            self._ramp_share = policy.share(n)

    def _ramp(self, conn: AsyncConn) -> None:
        if self.conns.get(conn.id) is not conn or not self._rdy_allowed():
            return
        value = self._policy.ramp(conn, list(self.conns.values()))
        if value and self.rdy_cap is not None:
            value = self.rdy_cap(conn, value)
        if value is not None and value != conn.rdy:
            conn.send_rdy(value)

    def _tick(self) -> None:
        """Every few seconds: redistribute RDY when needed, else make sure each has its share."""
        if self._closing or not self.conns:
            return
        conns = list(self.conns.values())
        if not self._rdy_allowed():
            self._apply(self._policy.pause(conns))
            return
        window, policy = self._backoff, self._policy
        if window.blocked:
            return
        if window.in_backoff or policy.redistributing(len(conns)) or policy.need_redistribute:
            self._apply(policy.redistribute(conns, time.time(), window.in_backoff, window.blocked))
        else:
            self._apply(policy.rebalance(conns, time.time()))

    def _set_max_in_flight(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self._policy.max_in_flight = max_in_flight
        self._refresh_fast_path()
        self._reapply_rdy()

    def _reapply_rdy(self) -> None:
        """Send now the RDY that max_in_flight, backoff and :meth:`_rdy_allowed` call for (after
        one of them changed; the periodic check would take up to ``rdy_redistribute_interval``)."""
        if self._closing:
            return
        conns = list(self.conns.values())
        window = self._backoff
        if self.max_in_flight == 0 or not self._rdy_allowed():
            self._apply(self._policy.pause(conns))
        elif window.in_backoff:
            # a pause took the probe's RDY 1 away: test the waters again now (a round does that
            # only when the probe is lost; pynsq redistributes on resume too)
            self._apply(self._policy.redistribute(conns, time.time(), True, window.blocked))
        else:
            self._apply(self._policy.rebalance(conns, time.time()))

    # ---- backoff --------------------------------------------------------------------------

    def _apply_backoff(self, action: BackoffAction) -> None:
        conns = list(self.conns.values())
        self._refresh_fast_path()
        if action is BackoffAction.START:
            window = self._backoff
            logger.info("[%s] backing off for %.2fs (%d connections)", self.name, window.window_length, len(conns))
            self._apply(self._policy.backoff_started(conns))
            if self._window_timer is not None:
                self._window_timer.cancel()
            self._window_timer = asyncio.get_running_loop().call_later(
                window.window_length, self._on_window_elapsed)
        elif action is BackoffAction.PROBE:
            changes = self._policy.probe(conns)
            if changes:
                logger.info("[%s:%s] testing the waters after backoff with RDY 1", changes[-1][0].id, self.name)
            self._apply(changes)
        else:
            logger.info("[%s] backoff complete, resuming normal operation (%d connections)", self.name, len(conns))
            self._apply(self._policy.rebalance(conns, time.time()))

    def _on_window_elapsed(self) -> None:
        self._window_timer = None
        if not self._closing:
            self._apply_backoff(self._backoff.window_elapsed())

    # ---- retiring a connection lookupd stopped listing (see reader_discovery) ----------------

    def _retire(self, address: str) -> None:
        conn = self.conns.pop(address, None)
        if conn is None:
            pending = self._connecting.pop(address, None)
            if pending is not None:
                pending.close()
            return
        logger.info("[%s:%s] closing the connection once its messages are answered", address, self.name)
        self._policy.connection_removed(conn, list(self.conns.values()), self._backoff.in_backoff)
        if conn.rdy:
            conn.send_rdy(0)
        ack = self._retiring[conn] = conn.start_close()
        ack.add_done_callback(lambda _: self._check_drained())
        self._refresh_fast_path()
        if not self._backoff.in_backoff:
            self._apply(self._policy.rebalance(list(self.conns.values()), time.time()))

    def _check_drained(self) -> None:
        for conn, ack in list(self._retiring.items()):
            if conn.in_flight <= 0 and ack.done():
                conn.close()  # its close event removes it from _retiring
        if self._closing and self._drained is not None and self._unanswered() == 0:
            self._drained.set()

    def _unanswered(self) -> int:
        return sum(c.in_flight for c in list(self.conns.values()) + list(self._retiring) if not c.closed())

    # ---- closing --------------------------------------------------------------------------

    def close(self) -> Awaitable[None]:
        """Graceful stop: RDY 0 and CLS to every nsqd, wait (up to ``close_timeout`` seconds) for
        in-flight messages to be answered, close the connections, stop every timer.

        Returns an awaitable; calling it without awaiting (pynsq style) closes in the background.
        """
        if self._close_future is not None:
            return self._close_future
        self._closing = True
        registry.unregister(self)
        self._stop_timers()
        self._refresh_fast_path()
        self._on_closing()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop running: nothing can be drained any more
            self._close_connections()
            self._closed = True
            self._close_future = _Done()
            return self._close_future
        self._close_future = loop.create_task(self._drain_and_close())
        return self._close_future

    def _on_closing(self) -> None:
        """Called once when close() starts, before anything is drained (the Reader ends its
        message streams here)."""

    def _stop_timers(self) -> None:
        if self._tick_timer is not None:
            self._tick_timer.stop()
            self._tick_timer = None
        if self._window_timer is not None:
            self._window_timer.cancel()
            self._window_timer = None
        self._discovery.stop()

    async def _drain_and_close(self) -> None:
        connecting = list(self._connecting.values())
        for conn in connecting:
            conn.close()
        acks = []
        for conn in list(self.conns.values()) + list(self._retiring):
            if conn.rdy:
                conn.send_rdy(0)
            acks.append(conn.start_close())
        try:
            await asyncio.wait_for(self._wait_drained(acks), self.close_timeout)
        except asyncio.TimeoutError:
            logger.warning("[%s] closing with %d message(s) still unanswered after %gs",
                           self.name, self._unanswered(), self.close_timeout)
        tasks = list(self._tasks)
        if tasks:  # coroutine handlers still running: cancelled, so their messages get a REQ
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=1.0)
        await self._flush_connections()
        self._close_connections()
        await asyncio.gather(*(conn.aclose() for conn in connecting), return_exceptions=True)
        self._closed = True

    async def _flush_connections(self) -> None:
        """Close each connection gracefully: the FIN/REQ already queued must be read by nsqd
        before the socket goes, or nsqd keeps those messages in flight until they time out."""
        conns = [c for c in list(self.conns.values()) + list(self._retiring) if not c.closed()]
        if conns:
            await asyncio.gather(*(c.close_gracefully() for c in conns), return_exceptions=True)

    async def _wait_drained(self, acks: list[asyncio.Future[bytes | None]]) -> None:
        if acks:
            await asyncio.gather(*acks, return_exceptions=True)  # CLOSE_WAIT: no more deliveries
        # only now: nsqd still delivers what it had buffered until CLOSE_WAIT, so an answer
        # before it that left nothing in flight must not end the drain
        self._drained = asyncio.Event()
        self._check_drained()
        await self._drained.wait()

    def _close_connections(self) -> None:
        for conn in list(self._connecting.values()) + list(self.conns.values()) + list(self._retiring):
            conn.close()
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    async def __aenter__(self: _Self) -> _Self:
        self._start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

