"""An in-memory stand-in for nsqd + AsyncConn's publish API, for publisher tests without sockets.

``FakeNsqd`` decodes every MPUB/DPUB it gets (with nsqd's size checks and error texts) and keeps
the published bodies; tests make it refuse connections, drop connections with publishes pending,
or answer E_* errors, and the publisher must account for every record exactly.
"""

from __future__ import annotations

import asyncio
import struct

from nsqcli.lib.protocol.commands import parse_mpub_body
from nsqcli.lib.protocol.errors import ConnectionClosedError, NSQError, ProtocolError


class FakeNsqd:
    def __init__(self, address: str = "127.0.0.1:4150", max_msg_size: int = 1024 * 1024,
                 max_body_size: int = 5 * 1024 * 1024) -> None:
        self.address = address
        self.max_msg_size = max_msg_size
        self.max_body_size = max_body_size
        self.messages: list[bytes] = []
        self.deferred: list[tuple[int, bytes]] = []
        self.commands: list[bytes] = []
        self.refuse = False  # connect() raises ConnectionRefusedError
        self.hold = False  # keep answers pending (to lose them with drop())
        self.error_code: str | None = None  # answer every publish with this E_* code
        self.conns: list[FakeConn] = []
        self.connects = 0

    async def connect(self, address: str, kwargs: dict, timeout: float) -> "FakeConn":
        await asyncio.sleep(0)
        if self.refuse:
            raise ConnectionRefusedError(111, "Connection refused")
        self.connects += 1
        conn = FakeConn(self)
        self.conns.append(conn)
        return conn

    def drop(self) -> None:
        """Close every connection now: pending publishes fail with ConnectionClosedError."""
        for conn in list(self.conns):
            conn.close(OSError("connection reset by peer"))

    def answer(self, data: bytes) -> NSQError | None:
        self.commands.append(data.split(b"\n", 1)[0])
        if self.error_code:
            return NSQError(self.error_code, "forced by the test")
        line, _, rest = data.partition(b"\n")
        (size,) = struct.unpack(">l", rest[:4])
        body = rest[4:4 + size]
        name = line.split(b" ")[0]
        if name == b"MPUB":
            if size > self.max_body_size:
                return NSQError("E_BAD_BODY", f"MPUB body too big {size} > {self.max_body_size}")
            try:
                messages = parse_mpub_body(body, self.max_msg_size)
            except ProtocolError as exc:
                text = str(exc).replace("MPUB ", "")
                return NSQError("E_BAD_MESSAGE", f"MPUB {text}")
            self.messages.extend(messages)
        elif name == b"DPUB":
            if size > self.max_msg_size:
                return NSQError("E_BAD_MESSAGE", f"DPUB message too big {size} > {self.max_msg_size}")
            self.deferred.append((int(line.split(b" ")[2]), body))
            self.messages.append(body)
        else:
            if size > self.max_msg_size:
                return NSQError("E_BAD_MESSAGE", f"PUB message too big {size} > {self.max_msg_size}")
            self.messages.append(body)
        return None


class FakeConn:
    """What the publisher uses of AsyncConn: publish_raw, on("close"), close."""

    def __init__(self, nsqd: FakeNsqd) -> None:
        self.nsqd = nsqd
        self.pending: list[asyncio.Future] = []
        self.closed = False
        self._listeners: dict[str, list] = {}

    def on(self, event: str, callback) -> None:
        self._listeners.setdefault(event, []).append(callback)

    def publish_raw(self, data: bytes, kind: bytes = b"MPUB") -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if self.closed:
            future.set_exception(ConnectionClosedError("connection closed"))
            return future
        self.pending.append(future)
        if not self.nsqd.hold:
            asyncio.get_running_loop().call_soon(self._answer, future, data)
        return future

    def _answer(self, future: asyncio.Future, data: bytes) -> None:
        if future.done() or self.closed:
            return
        self.pending.remove(future)
        error = self.nsqd.answer(data)
        if error is None:
            future.set_result(b"OK")
        else:
            future.set_exception(error)
            self.close(error)  # nsqd closes the connection after a fatal error

    async def aclose(self) -> None:
        self.close()

    def close(self, cause: BaseException | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        if self in self.nsqd.conns:
            self.nsqd.conns.remove(self)
        for future in self.pending:
            if not future.done():
                error = ConnectionClosedError("connection closed")
                error.__cause__ = cause
                future.set_exception(error)
        self.pending = []
        for callback in self._listeners.get("close", []):
            callback(conn=self)


