"""AsyncConn: one nsqd TCP connection, driving the sans-I/O ``ClientProtocol`` over a tornado IOStream.

Reading: one ``read_bytes(partial=True)`` per chunk, one ``receive_data`` per chunk; events are
dispatched in order, and a listener that raises is logged, never fatal to the read loop.
Writing: commands are appended to an output list and flushed once per loop iteration (or as soon
as it grows large), so the FIN/RDY/PUB of a whole chunk of messages leave in one write.
Timeouts: ``timeout`` bounds each handshake stage, named in the NSQTimeoutError; after the
handshake the connection closes itself when nothing arrived for 2 x ``heartbeat_interval``.
Closing fails every pending Future with ConnectionClosedError whose ``__cause__`` is the root cause.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Mapping

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, SSLIOStream, StreamClosedError
from tornado.tcpclient import TCPClient
from tornado.util import TimeoutError as TornadoTimeoutError

from . import event
from .conn_commands import CONNECTED, CONNECTING, DISCONNECTED, FLUSH_THRESHOLD, INIT, CommandsMixin
from .conn_options import DEFAULT_MAX_REQUEUE_DELAY, DEFAULT_TIMEOUT, DEFAULT_USER_AGENT
from .conn_options import build_options, check_port, split_host
from .conn_stale import StaleCheckMixin
from .event import EventedMixin
from .message import ANSWERED, Message, _Answered
from .protocol import events as ev
from .protocol.client import ClientProtocol
from .protocol.constants import DEFAULT_MAX_RDY_COUNT
from .protocol.errors import ConnectionClosedError, Error, NSQTimeoutError, ProtocolError
from .protocol.identify import IdentifyResponse
from .tls import TLSHandshakeError

if TYPE_CHECKING:
    from .conn_commands import Waiter

__all__ = ["AsyncConn", "ConnectError", "DEFAULT_USER_AGENT", "TLSHandshakeError",
           "INIT", "CONNECTING", "CONNECTED", "DISCONNECTED", "FLUSH_THRESHOLD"]

logger = logging.getLogger(__name__)

READ_CHUNK_SIZE = 256 * 1024
_REDACTED = b"<redacted>"


class ConnectError(Error, ConnectionError):
    """The TCP connection to nsqd could not be established."""


class AsyncConn(CommandsMixin, StaleCheckMixin, EventedMixin):
    """A connection to nsqd with pynsq's constructor, attributes and events (see the module doc).

    Extra keyword-only options: ``max_frame_size`` (bytes; default None: a message as large as
    nsqd can send, whatever its ``--max-msg-size``, and other frames up to 16 MiB) and
    ``max_requeue_delay`` (seconds, cap of the computed requeue delay ``requeue_delay x attempts``).
    """

    _mirrored_events = (event.MESSAGE, event.RESUME)  # read per message

    def __init__(
        self, host: str, port: int, timeout: float = DEFAULT_TIMEOUT, heartbeat_interval: float = 30,
        requeue_delay: float = 90, tls_v1: bool = False,
        tls_options: ssl.SSLContext | Mapping[str, Any] | None = None,
        snappy: bool = False, deflate: bool = False, deflate_level: int = 6,
        user_agent: str = DEFAULT_USER_AGENT, output_buffer_size: int = 16 * 1024,
        output_buffer_timeout: int = 250, sample_rate: int = 0, io_loop: IOLoop | None = None,
        auth_secret: str | bytes | None = None, msg_timeout: float | None = None,
        hostname: str | None = None, *, max_frame_size: int | None = None,
        max_requeue_delay: float = DEFAULT_MAX_REQUEUE_DELAY,
    ) -> None:
        super().__init__()
        # see _mirrored_events
        self._message_listeners: tuple[Callable[..., object], ...] = ()
        self._resume_listeners: tuple[Callable[..., object], ...] = ()
        self.host = split_host(host)
        self.port = check_port(port)
        self._options = build_options(
            timeout=timeout, heartbeat_interval=heartbeat_interval, requeue_delay=requeue_delay,
            max_requeue_delay=max_requeue_delay, tls_v1=tls_v1, tls_options=tls_options,
            snappy=snappy, deflate=deflate, deflate_level=deflate_level, user_agent=user_agent,
            output_buffer_size=output_buffer_size, output_buffer_timeout=output_buffer_timeout,
            sample_rate=sample_rate, auth_secret=auth_secret, msg_timeout=msg_timeout,
            hostname=hostname, max_frame_size=max_frame_size,
        )
        # pynsq's public attributes
        self.timeout = self._options.timeout
        self.heartbeat_interval = self._options.heartbeat_interval
        self.requeue_delay = self._options.requeue_delay
        self.max_requeue_delay = self._options.max_requeue_delay
        self.tls_v1, self.tls_options = tls_v1, tls_options
        self.snappy, self.deflate, self.deflate_level = snappy, deflate, deflate_level
        self.hostname: str = self._options.identify_data["hostname"]
        self.short_hostname: str = self._options.identify_data["client_id"]
        self.user_agent, self.sample_rate, self.msg_timeout = user_agent, sample_rate, msg_timeout
        self.output_buffer_size, self.output_buffer_timeout = output_buffer_size, output_buffer_timeout
        self.state = INIT
        self.stream: IOStream | None = None
        self.rdy = self.last_rdy = 0
        self.in_flight = 0
        self.max_rdy_count = DEFAULT_MAX_RDY_COUNT
        self.rdy_timeout: object = None  # pynsq's attribute, unused
        self.callback_queue: list[Any] = []  # pynsq's attribute, unused
        self.identify_response: IdentifyResponse | None = None
        self.auth_response: dict[str, Any] | None = None
        self.close_error: BaseException | None = None  # root cause of the last close
        # Set by a Reader/Writer retrying this nsqd: a failure with the same text as the last
        # one was reported already, so it is logged at debug (no warning per retry).
        self.repeated_failure_text: str | None = None
        self.last_recv_timestamp = self.last_msg_timestamp = time.time()
        self._generation = 0
        self._closed_future: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._protocol: ClientProtocol[Message] | None = None
        self._reset()

    def _reset(self) -> None:
        self._waiters: deque[Waiter] = deque()  # one entry per command awaiting a reply
        self._output: list[bytes] = []
        self._output_size = 0
        self._flush_handle: asyncio.Handle | None = None
        self._last_write: asyncio.Future[None] | None = None
        # what Message.fin()/req() return (see _flush)
        self._answered: asyncio.Future[None] | _Answered = ANSWERED
        self._write_calls = 0
        self._ready_future: asyncio.Future[None] | None = None
        self._run_task: asyncio.Task[None] | None = None  # connect, handshake, read loop
        self._closed_future = None
        self._close_wait: asyncio.Future[bytes | None] | None = None
        self._stage_timer: asyncio.TimerHandle | None = None
        self._stale_timer: asyncio.TimerHandle | None = None
        self._tls_pending = False
        self._half_closed = False  # close_gracefully() shut our side: nsqd's EOF is expected
        self._closing_gracefully = False  # close_gracefully() began: messages are refused
        #: messages nsqd sent after our side was shut: unanswerable, in flight at nsqd until
        #: its msg_timeout (see close_gracefully)
        self.messages_left_in_flight = 0
        self._tls_future: asyncio.Future[SSLIOStream] | None = None
        self._recv_mark = 0.0

    # ---- identity and state (pynsq) ---------------------------------------------------------

    @property
    def id(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __repr__(self) -> str:  # never shows the auth secret
        return f"<AsyncConn {self} state={self.state}>"

    def connected(self) -> bool:
        return self.state == CONNECTED

    def connecting(self) -> bool:
        return self.state == CONNECTING

    def closed(self) -> bool:
        return self.state in (INIT, DISCONNECTED)

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                # tornado types asyncio_loop on BaseAsyncIOLoop, which every tornado 6 IOLoop is
                self._loop = IOLoop.current().asyncio_loop  # type: ignore[attr-defined]
        return self._loop

    @property
    def closed_future(self) -> asyncio.Future[None]:
        """Resolves (with None) when this connection has closed; see ``close_error`` for why."""
        if self._closed_future is None:
            self._closed_future = self._get_loop().create_future()
            if self.state == DISCONNECTED:
                self._closed_future.set_result(None)
        return self._closed_future

    # ---- connecting and the handshake ---------------------------------------------------------

    def connect(self) -> asyncio.Future[None]:
        """Start connecting (no-op when already connecting or connected); returns the Future
        that ``wait_ready`` waits on."""
        if not self.closed() and self._ready_future is not None:
            return self._ready_future
        closed_future = self._closed_future
        self._loop = None
        self._reset()
        loop = self._get_loop()
        if closed_future is not None and not closed_future.done() and closed_future.get_loop() is loop:
            self._closed_future = closed_future  # someone awaits it from before connect()
        self.state = CONNECTING
        self.close_error = None
        self.rdy = self.last_rdy = self.in_flight = 0
        self._ready_future = loop.create_future()
        self._generation += 1
        self._run_task = loop.create_task(self._run(self._generation))
        return self._ready_future

    async def stopped(self) -> None:
        """After close(): until the connect attempt (and read loop) of this connection ended, so
        that a socket still connecting is closed by us rather than left to the GC when the event
        loop ends (its attempt ends within ``timeout``)."""
        task = self._run_task
        if task is not None and not task.done():
            await asyncio.wait([task], timeout=self._options.timeout + 1.0)

    async def aclose(self) -> None:
        """:meth:`close`, then :meth:`stopped`: what an owner closing a connection that may still
        be connecting awaits."""
        self.close()
        await self.stopped()

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Connect if needed and wait until the handshake completed; raises why it failed."""
        if self.state == INIT:
            self.connect()
        elif self.state == DISCONNECTED:
            ready = self._ready_future
            failure = ready.exception() if ready is not None and ready.done() else None
            if failure is not None:
                raise failure
            raise ConnectionClosedError(f"connection to {self} is closed") from self.close_error
        future = self._ready_future
        if future is None:
            raise ConnectionClosedError(f"connection to {self} is not connecting")
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:  # ours, or the handshake's own NSQTimeoutError
            if not future.done():
                raise NSQTimeoutError(
                    "waiting for the connection to be ready", timeout or 0, self.id) from None
            future.result()  # it ended as the wait did (same iteration): its outcome, not ours
        if self.state == DISCONNECTED:
            raise ConnectionClosedError(f"connection to {self} is closed") from self.close_error

    async def _run(self, generation: int) -> None:
        # generation: a read loop or connect of an earlier connection (close() then connect())
        # must never close the current one
        try:
            await self._open_stream(generation)
            protocol = self._protocol = ClientProtocol(
                self._options.identify_data, self._options.auth_secret, self._options.max_frame_size,
                message_factory=Message)  # _on_data sets each message's connection
            self._safe_trigger(event.CONNECT, conn=self)
            self._safe_trigger(event.IDENTIFY, conn=self, data=self._options.identify_data)
            if self.state != CONNECTING:
                return
            self._set_stage("during IDENTIFY")
            self._write(protocol.initiate())
            self._flush()
            await self._read_loop(generation)
        except Exception as exc:  # noqa: BLE001 - every failure becomes the close's root cause
            if generation == self._generation:
                self._close(exc)

    async def _open_stream(self, generation: int) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_UNSPEC
        timeout = self._options.timeout
        try:
            # tornado's own timeout closes the attempt's socket; cancelling the connect from
            # outside (asyncio.wait_for) left it half-open for the garbage collector (3.10)
            stream = await TCPClient().connect(self.host, self.port, af=family, timeout=timeout)
        except (asyncio.TimeoutError, TornadoTimeoutError):
            raise NSQTimeoutError("while connecting", timeout, self.id) from None
        except (OSError, StreamClosedError) as exc:
            cause = getattr(exc, "real_error", None) or exc
            raise ConnectError(f"could not connect to nsqd at {self}: {cause}") from cause
        if self.state != CONNECTING or generation != self._generation:  # closed while connecting
            stream.close()
            raise ConnectionClosedError(f"connection to {self} was closed while connecting")
        stream.set_nodelay(True)
        stream.read_chunk_size = READ_CHUNK_SIZE
        self.stream = stream
        self._recv_mark = self._get_loop().time()

    def _set_stage(self, stage: str | None) -> None:
        if self._stage_timer is not None:
            self._stage_timer.cancel()
            self._stage_timer = None
        if stage is not None:
            self._stage_timer = self._get_loop().call_later(
                self._options.timeout, self._stage_timed_out, stage)

    def _stage_timed_out(self, stage: str) -> None:
        self._stage_timer = None
        self._close(NSQTimeoutError(stage, self._options.timeout, self.id))

    async def _read_loop(self, generation: int) -> None:
        while self.state != DISCONNECTED and generation == self._generation:
            stream = self.stream
            if stream is None:
                return
            try:
                data = await stream.read_bytes(READ_CHUNK_SIZE, partial=True)
            except (StreamClosedError, OSError) as exc:
                # tornado re-raises what an inline read hit (an SSL alert: ssl.SSLError) as is
                cause = exc if not isinstance(exc, StreamClosedError) else exc.real_error or stream.error
                if generation == self._generation:
                    self._close(None if self._half_closed else self._closed_by_peer(cause))
                return
            self._on_data(data)
            if self._tls_pending:
                self._tls_pending = False
                await self._upgrade_tls()

    def _closed_by_peer(self, cause: BaseException | None) -> Error:
        if self.state == CONNECTING and isinstance(cause, ssl.SSLError):
            # TLS 1.3: nsqd checks the client certificate after our side of the handshake is
            # done, so its refusal (an alert) comes with the first read
            error: Error = TLSHandshakeError(f"TLS handshake with nsqd at {self} failed: {cause}")
        else:
            error = ConnectionClosedError(f"nsqd at {self} closed the connection")
        error.__cause__ = cause
        return error

    async def _upgrade_tls(self) -> None:
        stream = self.stream
        if stream is None or self._protocol is None:
            return
        if self._last_write is not None:
            await self._last_write  # start_tls needs an idle stream
        # the old stream gives its socket away; closing during the handshake cancels this
        # future, which closes the new TLS stream (see _close)
        self._tls_future = stream.start_tls(
            False, ssl_options=self._options.ssl_context, server_hostname=self.host)
        self.stream = None
        try:
            self.stream = await self._tls_future
        except (Exception, asyncio.CancelledError) as exc:
            if self.state == DISCONNECTED:  # the stage timer (or close()) got there first
                return
            cause = getattr(exc, "real_error", None) or exc
            raise TLSHandshakeError(f"TLS handshake with nsqd at {self} failed: {cause}") from cause
        finally:
            self._tls_future = None
        self.stream.set_nodelay(True)
        self.stream.read_chunk_size = READ_CHUNK_SIZE
        self._protocol.tls_established()

    # ---- receiving ----------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        self.last_recv_timestamp = now = time.time()
        self._recv_mark = self._loop.time()  # type: ignore[union-attr]  # set once connect() ran
        protocol = self._protocol
        assert protocol is not None
        if self.state == CONNECTING and self._output:
            self._flush()  # a compression upgrade may start in this chunk: send plain bytes first
        try:
            events = protocol.receive_data(data)
        except ProtocolError as exc:
            self._close(exc)
            return
        message_seen = False
        message_class = Message  # a local: read once per message
        refusing = self._closing_gracefully
        generation = self._generation
        for item in events:
            try:
                if type(item) is message_class:
                    if refusing:
                        self._refuse(item)
                        continue
                    if not message_seen:
                        self.last_msg_timestamp = now
                        message_seen = True
                    item._conn = self
                    item._generation = generation
                    self.in_flight += 1
                    # trigger(MESSAGE) inlined: the listeners are read for each message, as
                    # trigger() does, so a listener added or removed meanwhile is honoured
                    for callback in self._message_listeners:
                        callback(conn=self, message=item)
                else:
                    self._on_event(item)
            except Exception:  # noqa: BLE001 - a listener's bug must not kill the connection
                logger.exception("[%s] error while handling %s", self, type(item).__name__)
            if self.state == DISCONNECTED:
                return

    def _on_event(self, item: Any) -> None:
        kind = type(item)
        if kind is ev.Response:  # the most frequent: one per publish
            self._on_response(item)
        elif kind is ev.Heartbeat:
            self._write(self._protocol.nop())  # type: ignore[union-attr]  # events come from it
            self.trigger(event.HEARTBEAT, conn=self)
        elif kind is ev.ErrorReceived:
            self._on_error(item)
        elif kind is ev.IdentifyResponseReceived:
            response = item.response
            self.identify_response = response
            self.max_rdy_count = response.max_rdy_count
            self.trigger(event.IDENTIFY_RESPONSE, conn=self, data=response.raw)
        elif kind is ev.StartTLS:
            self._tls_pending = True
            self._set_stage("during TLS handshake")
        elif kind is ev.CompressionStarted:
            self._set_stage(f"during {item.kind} upgrade")
        elif kind is ev.AuthRequested:
            self._set_stage("during AUTH")
            self._write(self._protocol.auth_command())  # type: ignore[union-attr]  # as above
            self._flush()
            self.trigger(event.AUTH, conn=self, data=_REDACTED)  # pynsq passed the secret here
        elif kind is ev.AuthResponseReceived:
            self.auth_response = item.data
            self.trigger(event.AUTH_RESPONSE, conn=self, data=item.data)
        elif kind is ev.HandshakeComplete:
            self._on_handshake_complete()

    def _on_handshake_complete(self) -> None:
        self._set_stage(None)
        self.state = CONNECTED
        self._schedule_stale_check(self._stale_limit())
        future = self._ready_future
        if future is not None and not future.done():
            future.set_result(None)
        self.trigger(event.READY, conn=self)

    def _on_response(self, item: ev.Response) -> None:
        waiter = self._waiters.popleft() if self._waiters else None
        if waiter is not None and not waiter.done():
            waiter.set_result(item.data)
        listeners = self._listeners  # trigger(), without its call when nobody listens
        if listeners and listeners.get(event.RESPONSE):
            self.trigger(event.RESPONSE, conn=self, data=item.data)

    def _on_error(self, item: ev.ErrorReceived) -> None:
        error = item.error
        if not error.fatal:
            logger.warning("[%s] nsqd reported %s", self, error)
            self.trigger(event.ERROR, conn=self, error=error)
            return
        if item.command is not None and self._waiters:
            waiter = self._waiters.popleft()
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
        self._close(error)

    # ---- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close now (queued commands are written first). Pending Futures fail."""
        self._close(None)

    def _close(self, error: BaseException | None) -> None:
        if self.state in (INIT, DISCONNECTED):
            return
        self.state = DISCONNECTED
        self.close_error = error
        self._set_stage(None)
        if self._stale_timer is not None:
            self._stale_timer.cancel()
            self._stale_timer = None
        if error is None:
            self._flush()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._output.clear()
        if self._tls_future is not None:
            self._tls_future.cancel()
        if self.stream is not None:
            self.stream.close()
        if self._protocol is not None:
            self._protocol.connection_lost()
        if error is not None:
            repeated = self.repeated_failure_text is not None and str(error) == self.repeated_failure_text
            logger.log(logging.DEBUG if repeated else logging.WARNING, "[%s] connection closed: %s",
                       self, error)
        self._fail_pending(error)
        if error is not None:
            self._safe_trigger(event.ERROR, conn=self, error=error)
        self._safe_trigger(event.CLOSE, conn=self)
        if self._closed_future is not None and not self._closed_future.done():
            self._closed_future.set_result(None)

    def _safe_trigger(self, name: str, **kwargs: Any) -> None:
        try:
            self.trigger(name, **kwargs)
        except Exception:  # noqa: BLE001
            logger.exception("[%s] error in %r listener", self, name)
