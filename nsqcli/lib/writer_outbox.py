"""The publishes in flight on one Writer connection, and their pynsq callbacks.

nsqd answers the publishes of a connection in order, and AsyncConn resolves their Futures in that
order before it fires its ``response`` event. So an Outbox keeps ``(future, callback)`` per publish
in a FIFO and, on each response, pops the resolved head and calls its callback right there: no
``add_done_callback`` and no extra loop iteration per publish. When the connection closes, every
entry left has already been failed by AsyncConn (the root cause as ``__cause__``) and their
callbacks get that error. Publishes without a callback are not tracked at all (the benchmark's
path): their Future is the only record, and the connection's own error log reports the failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from .protocol.errors import ConnectionClosedError, Error, SendError

if TYPE_CHECKING:
    from .conn import AsyncConn

logger = logging.getLogger("nsqcli.lib.writer")

#: pynsq's publish callback: ``callback(conn, data)`` with nsqd's answer (``b"OK"``) or the
#: Error that failed the publish; ``conn`` is None when no connection was ever available
PublishCallback = Callable[["AsyncConn | None", "bytes | Error"], object]


class Outbox:
    """One connection's publishes: the newest Future, and the callbacks still to be called."""

    __slots__ = ("conn", "pending", "name", "last", "listening", "_publish_raw")

    def __init__(self, conn: AsyncConn, name: str) -> None:
        self.conn = conn
        self._publish_raw = conn.publish_raw  # bound once: the per-publish call
        self.name = name
        self.last: asyncio.Future[bytes] | None = None  # newest publish (answers arrive in order)
        # (future, callback) of the publishes that have a callback; the response listener is
        # registered only while this is non-empty, so publishes without callbacks cost nothing
        self.pending: deque[tuple[asyncio.Future[bytes], PublishCallback]] = deque()
        self.listening = False

    def publish_raw(self, command: bytes, callback: PublishCallback | None) -> asyncio.Future[bytes]:
        """A PUB already framed by the Writer (its hot path)."""
        self.last = future = self._publish_raw(command, b"PUB")
        if callback is not None:
            self._track(future, callback)
        return future

    def send(self, method: str, args: tuple[Any, ...], callback: PublishCallback | None) -> asyncio.Future[bytes]:
        """A publish method of AsyncConn (``publish_raw``, ``publish``, ``multi_publish``, ...)."""
        future: asyncio.Future[bytes] = getattr(self.conn, method)(*args)
        self.last = future
        if callback is not None:
            self._track(future, callback)
        return future

    def last_future(self) -> asyncio.Future[bytes] | None:
        """The newest publish if it is still unanswered (then every older one is too or done)."""
        last = self.last
        return last if last is not None and not last.done() else None

    def _track(self, future: asyncio.Future[bytes], callback: PublishCallback) -> None:
        self.pending.append((future, callback))
        if future.done():  # refused at once (the connection is going away)
            self._on_response()
        elif not self.listening:
            self.listening = True
            self.conn.on("response", self._on_response)

    def _on_response(self, conn: object = None, data: object = None, **kwargs: object) -> None:
        pending = self.pending
        while pending:
            future, callback = pending[0]
            if not future.done():
                return
            pending.popleft()
            run_callback(callback, self.conn, future)
        if self.listening:
            self.listening = False
            self.conn.off("response", self._on_response)

    def connection_closed(self) -> None:
        """Deliver the failures of every publish left (AsyncConn failed them before ``close``)."""
        pending, self.pending = self.pending, deque()
        for future, callback in pending:
            if not future.done():  # not expected: AsyncConn fails them all before "close"
                future.set_exception(ConnectionClosedError(f"connection to {self.conn} closed"))
            run_callback(callback, self.conn, future)


def run_callback(callback: PublishCallback, conn: AsyncConn | None, future: asyncio.Future[bytes]) -> None:
    """Call a pynsq publish callback as pynsq does: ``callback(conn, b"OK" or an Error)``."""
    data: bytes | Error
    try:
        data = future.result()
    except asyncio.CancelledError:
        data = ConnectionClosedError("publish cancelled")
    except Error as error:
        data = error
    except Exception as error:  # not expected from AsyncConn; still an nsq Error for pynsq code
        data = SendError("publish failed", error)
        data.__cause__ = error
    try:
        callback(conn, data)
    except Exception:
        logger.exception("uncaught exception in publish callback %r", callback)
