"""AsyncConn's sending side: the coalesced output buffer, commands, publish Futures, message answers.

Commands are appended to an output list and flushed once per loop iteration (or as soon as the
list grows past ``FLUSH_THRESHOLD``), through ``ClientProtocol.encode_outgoing`` so compression
applies to the whole batch: the FIN/RDY of a chunk of messages leave in one write.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Final, Sequence, Union

from tornado.iostream import StreamClosedError

from . import event
from .message import ANSWERED
from .protocol.client import State
from .protocol.errors import ConnectionClosedError, Error, LocalProtocolError, SendError

if TYPE_CHECKING:
    from tornado.iostream import IOStream

    from .conn_options import ConnOptions
    from .message import Message, _Answered
    from .protocol.client import ClientProtocol
    from .protocol.commands import Body

    #: builds one command from the connection's protocol state
    Build = Callable[[ClientProtocol[Message]], bytes]
    #: what awaits nsqd's reply to a command: a publish/SUB Future, CLS's, or None (send())
    Waiter = Union["asyncio.Future[bytes]", "asyncio.Future[bytes | None]", None]

logger = logging.getLogger("nsqcli.lib.conn")

INIT: Final = "INIT"
CONNECTING: Final = "CONNECTING"  # TCP connect and handshake
CONNECTED: Final = "CONNECTED"  # handshake complete: SUB/PUB allowed
DISCONNECTED: Final = "DISCONNECTED"

FLUSH_THRESHOLD = 64 * 1024
_PUBLISH_KINDS = frozenset({b"PUB", b"MPUB", b"DPUB"})
_PUBLISHING_STATES = frozenset({State.READY, State.SUBSCRIBING, State.SUBSCRIBED, State.CLOSING})


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class CommandsMixin:
    """Mixed into AsyncConn; uses its ``_protocol``, ``stream``, ``state`` and ``_close``."""

    if TYPE_CHECKING:  # what AsyncConn provides
        state: str  # INIT, CONNECTING, CONNECTED or DISCONNECTED
        stream: IOStream | None
        close_error: BaseException | None
        in_flight: int
        rdy: int
        last_rdy: int
        max_rdy_count: int
        _options: ConnOptions
        _protocol: ClientProtocol[Message] | None
        _generation: int
        _waiters: deque[Waiter]
        _output: list[bytes]
        _output_size: int
        _flush_handle: asyncio.Handle | None
        _last_write: asyncio.Future[None] | None
        _answered: asyncio.Future[None] | _Answered
        _write_calls: int
        _ready_future: asyncio.Future[None] | None
        _close_wait: asyncio.Future[bytes | None] | None
        _half_closed: bool
        _closing_gracefully: bool
        messages_left_in_flight: int
        _resume_listeners: tuple[Callable[..., object], ...]

        @property
        def closed_future(self) -> asyncio.Future[None]: ...
        def _get_loop(self) -> asyncio.AbstractEventLoop: ...
        def _close(self, error: BaseException | None) -> None: ...
        def close(self) -> None: ...
        def trigger(self, name: str, *args: Any, **kwargs: Any) -> None: ...

    # the connection generation whose unanswerable messages were already warned about: a lost
    # connection with max_in_flight messages in flight logs one warning, not one per message
    _unanswerable_warned = -1

    def _write(self, data: bytes) -> None:
        self._output.append(data)
        self._output_size += len(data)
        if self._output_size >= FLUSH_THRESHOLD:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self._get_loop().call_soon(self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        output = self._output
        if not output:
            return
        data = output[0] if len(output) == 1 else b"".join(output)
        output.clear()
        self._output_size = 0
        stream, protocol = self.stream, self._protocol
        if stream is None or protocol is None or stream.closed() or self._half_closed:
            return
        try:
            last = self._last_write = stream.write(protocol.encode_outgoing(data))
            self._write_calls += 1
        except StreamClosedError as exc:
            self._close(SendError(f"could not write to nsqd at {self}", exc))
            return
        # what Message.fin()/req() return until the next write: done, unless this write left
        # more than FLUSH_THRESHOLD bytes the socket has not taken (then: until it took them)
        if last.done() or stream._total_write_index - stream._total_write_done_index <= FLUSH_THRESHOLD:  # noqa: SLF001
            answered = self._answered
            if answered is not ANSWERED and answered.done():
                return  # the usual case: nothing changes
            answered = self._get_loop().create_future()  # awaiting a done Future is the fastest
            answered.set_result(None)
        else:
            answered = self._get_loop().create_future()
            last.add_done_callback(lambda _: _resolve(answered))
        self._answered = answered

    async def flush(self) -> None:
        """Send what is queued now and wait until the socket took it (backpressure for producers)."""
        self._flush()
        if self._last_write is not None:
            try:
                await self._last_write
            except StreamClosedError:
                raise ConnectionClosedError(f"connection to {self} is closed") from self.close_error

    async def close_gracefully(self, timeout: float = 1.0) -> None:
        """Flush, shut our side, and wait (up to ``timeout``) for nsqd to close its side before
        closing. A plain close with unread bytes in the socket sends a reset, and nsqd may then
        drop the last FIN/REQ it had not read yet.

        A message that arrives from now on (nsqd v1.3.0 can send one after CLOSE_WAIT: its
        message pump may hold one when RDY 0 comes) is not handed to the handler. While this
        still waits for the socket to take our queued writes, it gets ``REQ <id> 0``, written
        before our side is shut (nsqd takes REQ in its closing state and hands the message to
        another consumer at once). Once our side is shut, which happens without waiting when
        nothing is left to write, no answer can be sent: nsqd redelivers it after msg_timeout.
        """
        self._closing_gracefully = True
        loop = self._get_loop()
        deadline = loop.time() + timeout
        while True:  # until the socket took everything, a REQ for a late message included
            self._flush()
            last = self._last_write
            if last is None or last.done() or loop.time() >= deadline:
                break
            try:
                await asyncio.wait_for(asyncio.shield(last), deadline - loop.time())
            except (asyncio.TimeoutError, StreamClosedError):
                break
        stream = self.stream
        if stream is None or stream.closed():
            self.close()
            return
        try:
            # no await since the check above: a message read from here on cannot be answered.
            # socket.socket's shutdown, also under TLS: ssl.SSLSocket.shutdown would drop the TLS
            # state that still decrypts what nsqd sends until its EOF (nsqd's Go TLS reads a TCP
            # EOF at a record boundary as a plain EOF and closes, as without TLS)
            socket.socket.shutdown(stream.socket, socket.SHUT_WR)
            self._half_closed = True
            await asyncio.wait_for(asyncio.shield(self.closed_future), timeout)
        except (OSError, asyncio.TimeoutError):
            pass
        self.close()

    def _refuse(self, message: Message) -> None:
        """A message that arrived during close_gracefully(): never handed to the handler (see
        there); requeued at once while our side is not shut yet. Not in ``in_flight``, and no
        backoff/continue event: the handler did not fail."""
        msg_id = message.id
        protocol = self._protocol
        if not self._half_closed and protocol is not None and self.state == CONNECTED:
            try:
                self._write(protocol.requeue(msg_id, 0))
            except LocalProtocolError:  # not consuming: cannot happen with a message
                pass
            else:
                self._flush()
                logger.debug("[%s] message %s came after the drain: not handled, requeued (REQ 0)",
                             self, msg_id.decode("ascii", "replace"))
                return
        self.messages_left_in_flight += 1
        logger.debug("[%s] message %s came after the drain: not handled (our side of the "
                     "connection is shut: no REQ can be sent), nsqd redelivers it after "
                     "msg_timeout", self, msg_id.decode("ascii", "replace"))

    @property
    def write_buffer_size(self) -> int:
        """Bytes queued but not yet taken by the socket."""
        stream = self.stream
        if stream is None:
            return self._output_size
        return self._output_size + stream._total_write_index - stream._total_write_done_index  # noqa: SLF001

    def send(self, data: bytes) -> None:
        """Queue raw command bytes (pynsq). SUB, PUB, MPUB, DPUB and CLS sent this way are
        tracked so that nsqd's reply reaches the ``response`` event in order."""
        protocol = self._protocol
        if protocol is None or self.state == DISCONNECTED:
            raise SendError(f"cannot send to nsqd at {self}: not connected")
        line_end = data.find(b"\n")
        name, _, params = data[:line_end if line_end >= 0 else len(data)].partition(b" ")
        if name == b"SUB":
            topic, _, channel = params.partition(b" ")
            data = protocol.subscribe(topic, channel)
            self._waiters.append(None)
        elif name in _PUBLISH_KINDS:
            protocol.expect_response(name)
            self._waiters.append(None)
        elif name == b"CLS":
            self.start_close()
            return
        self._write(data)

    def send_rdy(self, value: int) -> bool:
        """Send ``RDY value`` and record it in ``rdy``/``last_rdy``; False if not subscribed."""
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"RDY count must be an int >= 0, got {value!r}")
        if value > self.max_rdy_count:
            raise ValueError(f"RDY {value} exceeds nsqd's max_rdy_count {self.max_rdy_count} for {self}")
        protocol = self._protocol
        if protocol is None or self.state != CONNECTED:
            return False
        try:
            data = protocol.ready(value)
        except LocalProtocolError:
            return False
        self._write(data)
        self.rdy = self.last_rdy = value
        return True

    def subscribe(self, topic: str, channel: str) -> asyncio.Future[bytes]:
        """SUB; the Future resolves with b"OK" (or fails with nsqd's NSQError)."""
        return self._request(lambda p: p.subscribe(topic, channel))

    def publish(self, topic: str, body: Body) -> asyncio.Future[bytes]:
        return self._request(lambda p: p.publish(topic, body))

    def multi_publish(self, topic: str, bodies: Sequence[Body]) -> asyncio.Future[bytes]:
        return self._request(lambda p: p.multi_publish(topic, bodies))

    def deferred_publish(self, topic: str, delay_ms: int, body: Body) -> asyncio.Future[bytes]:
        return self._request(lambda p: p.deferred_publish(topic, delay_ms, body))

    def publish_raw(self, command: bytes | bytearray | memoryview,
                    kind: bytes = b"MPUB") -> asyncio.Future[bytes]:
        """Send a pre-encoded PUB/MPUB/DPUB command; the Future resolves like ``publish``."""
        if kind not in _PUBLISH_KINDS:
            raise ValueError(f"kind must be one of {sorted(_PUBLISH_KINDS)}, got {kind!r}")
        if not isinstance(command, (bytes, bytearray, memoryview)):
            raise TypeError(f"command must be bytes, not {type(command).__name__}")
        protocol = self._protocol
        if protocol is None or self.state != CONNECTED:
            return self._request(None)  # fails the Future with the reason
        if protocol.state not in _PUBLISHING_STATES:
            raise LocalProtocolError(f"cannot {kind.decode()} while the connection is {protocol.state.value}")
        # the hot path of nsq-pub and the Writer: no closure, no copy of bytes already immutable
        future: asyncio.Future[bytes] = self._get_loop().create_future()
        protocol.expect_response(kind)
        self._waiters.append(future)
        self._write(command if type(command) is bytes else bytes(command))
        return future

    def _request(self, build: Build | None) -> asyncio.Future[bytes]:
        future: asyncio.Future[bytes] = self._get_loop().create_future()
        protocol = self._protocol
        if protocol is None or self.state != CONNECTED or build is None:
            error = SendError(f"connection to nsqd at {self} is not ready ({self.state})")
            error.__cause__ = self.close_error
            future.set_exception(error)
            return future
        data = build(protocol)  # bad arguments raise here, synchronously
        self._waiters.append(future)
        self._write(data)
        return future

    def start_close(self) -> asyncio.Future[bytes | None]:
        """Send CLS; the Future resolves with b"CLOSE_WAIT" once nsqd stopped sending messages
        (FIN/REQ still work until ``close()``). Resolves at once when not subscribed."""
        if self._close_wait is not None:
            return self._close_wait
        future: asyncio.Future[bytes | None] = self._get_loop().create_future()
        protocol = self._protocol
        if protocol is None or self.state != CONNECTED or protocol.state not in (
                State.SUBSCRIBING, State.SUBSCRIBED):
            future.set_result(None)
            return future
        self._close_wait = future
        self._waiters.append(future)
        self._write(protocol.close())
        return future

    def _fail_pending(self, error: BaseException | None) -> None:
        """On close: the ready Future fails with the root cause, every reply waiter with
        ConnectionClosedError caused by it."""
        ready = self._ready_future
        if ready is not None and not ready.done():
            failure = error if error is not None else ConnectionClosedError(
                f"connection to {self} was closed before it was ready")
            ready.set_exception(failure)
            ready.exception()  # retrieved: wait_ready re-raises it; nobody waiting is fine
        waiters: deque[Waiter]
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if waiter is not None and not waiter.done():
                closed = ConnectionClosedError(
                    f"connection to nsqd at {self} closed before nsqd answered"
                    + (f": {error}" if error is not None else ""))
                closed.__cause__ = error
                waiter.set_exception(closed)

    # ---- message answers (called by Message) ------------------------------------------------
    #
    # An answer reaches nsqd only on the connection that delivered the message: after a close the
    # message is nsqd's again (it redelivers it), and after connect() a FIN on the new socket
    # would name a message this client does not own. Such answers are logged and dropped, and
    # fire no resume/backoff/continue event (go-nsq drains them the same way), so a REQ for a
    # message of a lost connection never pauses the Reader's other nsqds.

    def _unanswerable(self, message: Message) -> str | None:
        """Why ``message`` cannot be answered here, or None."""
        generation = message._generation
        if generation is not None and generation != self._generation:
            return "it was delivered before this connection reconnected"
        if self._protocol is None or self.state != CONNECTED:
            return "the connection that delivered it is closed"
        return None

    def _answer(self, build: Build, what: str, message: Message) -> bool:
        """Queue ``build(protocol)``'s FIN/REQ/TOUCH for ``message``; False when it cannot be
        answered here (logged: one warning per connection, then debug)."""
        reason = self._unanswerable(message)
        protocol = self._protocol
        if reason is None and protocol is not None:  # (no reason implies a protocol)
            try:
                self._write(build(protocol))
                return True
            except LocalProtocolError as exc:
                reason = str(exc)
        generation = message._generation if message._generation is not None else self._generation
        first = self._unanswerable_warned != generation
        self._unanswerable_warned = generation
        (logger.warning if first else logger.debug)(
            "[%s] cannot %s message %s: %s (nsqd will redeliver it%s)", self, what,
            message.id.decode("ascii", "replace"), reason,
            "; more on this connection are logged at debug level" if first else "")
        return False

    def _on_message_finish(self, message: Message) -> None:
        msg_id = message.id
        # Hot path: messages only arrive while subscribed, and the protocol leaves that state
        # only by closing (CLS keeps FIN valid), so this generation + CONNECTED + nsqd's 16-byte
        # id is enough.
        if (message._generation == self._generation and self.state == CONNECTED
                and type(msg_id) is bytes and len(msg_id) == 16):
            # _write() inlined: the FINs of a chunk pile up and leave in one write
            self._output += (b"FIN ", msg_id, b"\n")
            self._output_size += 21
            if self._output_size >= FLUSH_THRESHOLD:
                self._flush()
            elif self._flush_handle is None:
                self._flush_handle = self._get_loop().call_soon(self._flush)
        elif not self._answer(lambda p: p.finish(msg_id), "FIN", message):
            return
        if self.in_flight > 0:
            self.in_flight -= 1
        # trigger(RESUME) inlined; a Reader listens only while a FIN needs bookkeeping
        for callback in self._resume_listeners:
            callback(conn=self)

    def _on_messages_finish(self, messages: list[Message]) -> None:
        """FIN for many messages of this connection at once (``finish_all``): one piece of
        output for the whole batch instead of one per message."""
        generation = self._generation
        if self.state != CONNECTED or any(message._generation != generation for message in messages):
            for message in messages:  # some cannot be answered here: each on its own
                self._on_message_finish(message)
            return
        ids = [message.id for message in messages]
        count = len(ids)
        self.in_flight = max(0, self.in_flight - count)
        data = None
        try:
            data = b"FIN " + b"\nFIN ".join(ids) + b"\n"
        except TypeError:  # an id that is not bytes: the checked path names it
            pass
        # every id nsqd's 16 bytes, none with a separator: exactly count FIN lines
        if data is not None and not (len(data) == 21 * count and data.count(b"\n") == count
                                     and data.count(b" ") == count and set(map(len, ids)) == {16}):
            data = None
        if data is not None:
            self._write(data)
            self._flush()  # a batch is worth its own write: nsqd can refill RDY sooner
        else:
            for message in messages:
                self._answer(lambda p: p.finish(message.id), "FIN", message)  # called at once
        callbacks = self._resume_listeners
        if callbacks:
            for _ in range(count):
                for callback in callbacks:
                    callback(conn=self)

    def _on_message_requeue(self, message: Message, time_ms: int, backoff: bool) -> int:
        if time_ms < 0:
            delay = min(self._options.requeue_delay * message.attempts, self._options.max_requeue_delay)
            time_ms = int(delay * 1000)
        if self._answer(lambda p: p.requeue(message.id, time_ms), "REQ", message):
            if self.in_flight > 0:
                self.in_flight -= 1
            self.trigger(event.BACKOFF if backoff else event.CONTINUE, conn=self)
        return time_ms

    def _on_message_touch(self, message: Message) -> None:
        self._answer(lambda p: p.touch(message.id), "TOUCH", message)

    # pynsq's explicit upgrade steps: negotiation is automatic here, so these do nothing.
    def upgrade_to_tls(self, options: Any = None) -> None:
        """No-op: TLS is negotiated during IDENTIFY when ``tls_v1=True``."""

    def upgrade_to_snappy(self) -> None:
        """No-op: snappy is negotiated during IDENTIFY when ``snappy=True``."""

    def upgrade_to_deflate(self) -> None:
        """No-op: deflate is negotiated during IDENTIFY when ``deflate=True``."""
