"""Writer: pynsq's high-level producer, with acknowledged publishes, reconnects and a draining close.

What changed from pynsq (the API is the same)::

    writer = nsq.Writer(["127.0.0.1:4150"])
    writer.pub("topic", b"body", callback)          # callback(conn, data): b"OK" or an Error
    await writer.pub("topic", b"body")               # resolves on nsqd's OK, raises its E_* error
    await writer.close()                             # waits for outstanding acks, then closes

* The returned awaitable means "nsqd acknowledged", not "written to the socket".
* Publishing before a connection is up waits for one (up to ``connect_timeout`` seconds) instead of
  failing at once; several nsqd addresses are used round-robin among the connected ones.
* A connection that dies fails its pending publishes with ConnectionClosedError whose
  ``__cause__`` is the root cause; nothing is silently dropped or reported OK.
* Reconnects use exponential backoff with jitter: the first retry is fast (~0.1 s), later ones are
  capped at ``reconnect_interval`` (pynsq waited a fixed ``reconnect_interval`` every time).
* Topic names and bodies are checked before anything is sent (ValueError / TypeError).

The publish path is the benchmark's hot path: one dict lookup for the topic check, one pick of a
connection, and the connection's own Future returned as is (no timer, no extra Future).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable

from tornado.ioloop import IOLoop

from . import registry
from .addresses import Address, format_address, parse_addresses
from .protocol import commands
from .protocol.commands import Body
from .protocol.errors import Error, SendError
from .protocol.names import check_topic
from .writer_links import Link, LinkSupervisor
from .writer_outbox import Outbox, PublishCallback, run_callback

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .conn import AsyncConn
    from .conn_options import ConnKwargs

logger = logging.getLogger(__name__)


class Writer:
    """A producer publishing to one or more nsqd (see the module docstring)."""

    def __init__(
        self,
        nsqd_tcp_addresses: Address | Iterable[Address],
        reconnect_interval: float = 15.0,
        name: str | None = None,
        *,
        connect_timeout: float = 5.0,
        close_timeout: float = 10.0,
        **kwargs: Unpack[ConnKwargs],
    ) -> None:
        addresses = parse_addresses(nsqd_tcp_addresses)
        _check_seconds("reconnect_interval", reconnect_interval)
        _check_seconds("connect_timeout", connect_timeout)
        _check_seconds("close_timeout", close_timeout)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        self.nsqd_tcp_addresses = [format_address(h, p) for h, p in addresses]
        self.name = name or self.nsqd_tcp_addresses[0]
        self.reconnect_interval = float(reconnect_interval)
        self.connect_timeout = float(connect_timeout)
        self.close_timeout = float(close_timeout)
        self.conn_kwargs = kwargs
        #: connected (handshake complete) connections by id, as pynsq's ``Writer.conns``
        self.conns: dict[str, AsyncConn] = {}
        self._links = LinkSupervisor(self, kwargs)  # validates kwargs against AsyncConn
        self._ready: list[Outbox] = []  # one per connection in self.conns, for round-robin
        self._only: Outbox | None = None  # the one ready Outbox while not closing: pub()'s path
        self._rr = 0
        self._topics: dict[object, bytes] = {}  # validated topic -> its b"PUB <topic>\n" line
        self._waiting: deque[_Waiting] = deque()  # publishes waiting for a connection
        self._expiry: asyncio.TimerHandle | None = None
        self._closing = False
        self._close_future: asyncio.Future[None] | None = None
        self._started = False
        for host, port in addresses:
            self._links.add(host, port)
        registry.register(self)
        # Start on the loop: the running one, or (pynsq style: created first, then nsq.run())
        # the loop IOLoop.current() will run. A Writer created outside any loop and used inside
        # a later asyncio.run() starts on its first publish instead.
        self.io_loop = IOLoop.current()
        self.io_loop.add_callback(self._start)

    def __repr__(self) -> str:
        return f"<Writer {self.name} connected={len(self._ready)}/{len(self._links.links)}>"

    # ---- publishing ----------------------------------------------------------------------

    def pub(self, topic: str, msg: Body, callback: PublishCallback | None = None) -> "asyncio.Future[bytes]":
        """PUB one message; the returned awaitable resolves with b"OK" once nsqd acknowledged it."""
        line = self._topics.get(topic)
        if line is None:
            line = self._check_topic(topic)
        if type(msg) is bytes and msg:  # the hot path: frame it here, once
            command = line + _pack_size(len(msg)) + msg
            only = self._only
            if only is not None:
                return only.publish_raw(command, callback)
            return self._publish("publish_raw", (command, b"PUB"), callback)
        return self._publish("publish", (topic, msg), callback)  # str etc.: the encoder checks

    def mpub(self, topic: str, msg: Iterable[Body] | Body,
             callback: PublishCallback | None = None) -> "asyncio.Future[bytes]":
        """MPUB a list of messages atomically (a single bytes/str body is wrapped, as pynsq)."""
        if topic not in self._topics:
            self._check_topic(topic)
        if isinstance(msg, (bytes, bytearray, memoryview, str)):
            msg = [msg]
        elif not isinstance(msg, (list, tuple)):
            msg = list(msg)
        return self._publish("multi_publish", (topic, msg), callback)

    def dpub(self, topic: str, delay_ms: int, msg: Body,
             callback: PublishCallback | None = None) -> "asyncio.Future[bytes]":
        """DPUB: publish ``msg`` for delivery after ``delay_ms`` milliseconds."""
        if topic not in self._topics:
            self._check_topic(topic)
        return self._publish("deferred_publish", (topic, delay_ms, msg), callback)

    def _publish(self, method: str, args: tuple[Any, ...],
                 callback: PublishCallback | None) -> asyncio.Future[bytes]:
        if not self._started:
            self._start()
        ready = self._ready
        if ready and not self._closing:
            if len(ready) == 1:
                outbox = ready[0]
            else:
                self._rr = rr = (self._rr + 1) % len(ready)
                outbox = ready[rr]
            return outbox.send(method, args, callback)
        return self._wait_for_connection(method, args, callback)

    def _check_topic(self, topic: str) -> bytes:
        check_topic(topic)  # ValueError / TypeError that names the problem
        line = commands.pub(topic, b"-")[:-5]  # the protocol's PUB line, minus size and body
        if len(self._topics) < 10_000:
            self._topics[topic] = line
        return line

    # ---- publishes waiting for a connection ----------------------------------------------

    def _wait_for_connection(self, method: str, args: tuple[Any, ...],
                             callback: PublishCallback | None) -> asyncio.Future[bytes]:
        _ENCODERS[method](*args)  # the connection would validate on send; queued ones now
        loop = self._loop()
        future: asyncio.Future[bytes] = loop.create_future()
        if self._closing:
            _fail(future, callback, SendError(f"Writer {self.name} is closed"))
            return future
        deadline = loop.time() + self.connect_timeout
        self._waiting.append(_Waiting(deadline, method, args, future, callback))
        if self._expiry is None:
            self._expiry = loop.call_at(deadline, self._expire_waiting)
        return future

    def _flush_waiting(self) -> None:
        waiting = self._waiting
        while waiting and self._ready:
            item = waiting.popleft()
            if item.future.done():
                continue
            ready = self._ready
            self._rr = rr = (self._rr + 1) % len(ready)
            sent = ready[rr].send(item.method, item.args, item.callback)
            sent.add_done_callback(functools.partial(_copy_outcome, item.future))
        if not waiting and self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _expire_waiting(self) -> None:
        self._expiry = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        waiting = self._waiting
        while waiting and waiting[0].deadline <= now:
            item = waiting.popleft()
            _fail(item.future, item.callback, self._no_connection_error())
        if waiting:
            self._expiry = loop.call_at(waiting[0].deadline, self._expire_waiting)

    def _no_connection_error(self) -> SendError:
        cause = self._links.last_error()
        error = SendError(f"no connection to nsqd ({', '.join(self.nsqd_tcp_addresses)}) "
                          f"within {self.connect_timeout:g}s", cause)
        error.__cause__ = cause
        return error

    # ---- connections (called by the LinkSupervisor) -------------------------------------

    def _on_link_ready(self, link: Link, conn: AsyncConn) -> None:
        self.conns[conn.id] = conn
        self._ready.append(Outbox(conn, self.name))
        self._update_only()
        self._flush_waiting()

    def _on_link_lost(self, link: Link, conn: AsyncConn) -> None:
        """The connection closed (called from its ``close`` event, so no publish picks it)."""
        if self.conns.get(conn.id) is conn:
            del self.conns[conn.id]
        for outbox in self._ready:
            if outbox.conn is conn:
                self._ready.remove(outbox)
                self._update_only()
                outbox.connection_closed()
                break

    def _update_only(self) -> None:
        self._only = self._ready[0] if len(self._ready) == 1 and not self._closing else None

    def heartbeat(self, conn: AsyncConn) -> None:
        """Called for every heartbeat from nsqd; override to monitor liveness (pynsq hook)."""

    def connect(self) -> None:
        """Connect to every configured nsqd (done automatically when the loop starts)."""
        self._start()

    def connect_to_nsqd(self, host: str, port: int) -> None:
        """Add an nsqd to publish to (pynsq API); a known address is ignored."""
        if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
            raise TypeError("connect_to_nsqd(host: str, port: int)")
        link = self._links.add(host, port)
        if link is not None:
            self.nsqd_tcp_addresses.append(link.address)
            if self._started:
                self._links.start(link)

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._links.start_all()

    def _loop(self) -> asyncio.AbstractEventLoop:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            # tornado types asyncio_loop on BaseAsyncIOLoop, which every tornado 6 IOLoop is
            loop: asyncio.AbstractEventLoop = IOLoop.current().asyncio_loop  # type: ignore[attr-defined]
            return loop

    # ---- closing -------------------------------------------------------------------------

    def close(self) -> "asyncio.Future[None]":
        """Stop accepting publishes, wait (up to ``close_timeout``) for outstanding ones, close.

        Returns an awaitable; calling it without awaiting (pynsq style) closes in the background.
        """
        if self._close_future is not None:
            return self._close_future
        self._closing = True
        self._only = None
        registry.unregister(self)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the loop is gone: nothing can be flushed any more
            self._abort(SendError(f"Writer {self.name} closed without a running event loop"))
            done: asyncio.Future[None] = self._loop().create_future()
            self._close_future = done
            done.set_result(None)
            return done
        self._close_future = loop.create_task(self._drain_and_close())
        return self._close_future

    async def _drain_and_close(self) -> None:
        if self._waiting:
            self._start()  # closed before the loop started it: still deliver what was queued
        pending = [item.future for item in self._waiting if not item.future.done()]
        pending += [f for f in (o.last_future() for o in self._ready) if f is not None and not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=self.close_timeout)
        self._abort(SendError(f"Writer {self.name} closed before a connection to nsqd was available"))
        await self._links.connections_ended()

    def _abort(self, error: Error) -> None:
        for item in self._waiting:
            _fail(item.future, item.callback, error)
        self._waiting.clear()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._links.stop_all()

    async def __aenter__(self) -> "Writer":
        self._start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class _Waiting:
    """A publish waiting for a connection."""

    __slots__ = ("deadline", "method", "args", "future", "callback")

    def __init__(self, deadline: float, method: str, args: tuple[Any, ...], future: asyncio.Future[bytes],
                 callback: PublishCallback | None) -> None:
        self.deadline = deadline
        self.method = method
        self.args = args
        self.future = future
        self.callback = callback


def _fail(future: asyncio.Future[bytes], callback: PublishCallback | None, error: Error) -> None:
    """Fail a publish that never reached a connection: callback(None, error) at once, as pynsq
    (not via the loop: after close() the loop may stop before a scheduled callback runs)."""
    if future.done():
        return
    future.set_exception(error)
    if callback is not None:
        run_callback(callback, None, future)


def _copy_outcome(target: asyncio.Future[bytes], source: asyncio.Future[bytes]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
        return
    error = source.exception()
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())


def _check_seconds(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{what} must be > 0 seconds, got {value!r}")


#: the encoder each connection method uses, to validate a publish that has to wait
_ENCODERS: dict[str, Callable[..., object]] = {"publish": commands.pub, "multi_publish": commands.mpub, "deferred_publish": commands.dpub,
             "publish_raw": lambda command, kind: None}  # built and checked by pub() already
_pack_size = struct.Struct(">l").pack

__all__ = ["Writer"]
