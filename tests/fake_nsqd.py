"""A scripted fake nsqd for tests: speaks protocol V2 and records every command it receives.

Use it inside a running event loop (tornado runs on asyncio)::

    from fake_nsqd import FakeNSQD          # tests/ is on sys.path through tests/conftest.py

    async def main():
        async with FakeNSQD() as fake:        # 127.0.0.1, a free port
            conn = AsyncConn(fake.host, fake.port)
            ...
            await fake.wait_for("FIN")         # until a FIN arrived (any connection)
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 1", "FIN " + id]

By default each connection runs :meth:`FakePeer.handshake` (IDENTIFY reply, TLS/snappy/deflate
upgrades, AUTH) and then :meth:`FakePeer.serve`, which answers like nsqd: SUB/PUB/MPUB/DPUB -> OK,
CLS -> CLOSE_WAIT, FIN/REQ/TOUCH/RDY/NOP -> nothing. Pass ``handler=`` (an ``async def
handler(peer)``) to script a connection; the peer's send_* methods may also be called from the test
at any time (``fake.peers[0].send_message(...)``). ``responses={"PUB": b"E_BAD_TOPIC ..."}`` makes
``serve`` answer a command with an error (any reply starting ``E_``) or other bytes instead; a
callable value gets the Command and returns the reply bytes, or None for no reply.

The transcript holds each command as its line (``"SUB t c"``, ``"PUB t"``, ``"IDENTIFY"``);
``peer.commands`` keeps the parsed Command objects with their bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import time
from collections import deque
from typing import Any, Awaitable, Callable, Iterator

from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpserver import TCPServer

from nsqcli.lib.protocol.commands import Command, CommandParser
from nsqcli.lib.protocol.compression import Codec, make_codec
from nsqcli.lib.protocol.constants import FRAME_TYPE_ERROR, FRAME_TYPE_RESPONSE
from nsqcli.lib.protocol.frames import encode_frame, encode_message

Handler = Callable[["FakePeer"], Awaitable[None]]
Reply = bytes | Callable[[Command], "bytes | None"]

DEFAULT_IDENTIFY_RESPONSE: dict[str, Any] = {
    "max_rdy_count": 2500,
    "version": "1.3.0",
    "max_msg_timeout": 900000,
    "msg_timeout": 60000,
    "tls_v1": False,
    "deflate": False,
    "deflate_level": 0,
    "max_deflate_level": 6,
    "snappy": False,
    "sample_rate": 0,
    "auth_required": False,
    "output_buffer_size": 16384,
    "output_buffer_timeout": 250,
}

_AUTO_OK = {b"SUB", b"PUB", b"MPUB", b"DPUB"}


def command_line(cmd: Command) -> str:
    return b" ".join((cmd.name,) + cmd.params).decode("utf-8", "replace")


def new_message_id(n: int) -> bytes:
    """A 16-byte hex message id like nsqd's."""
    return b"%016x" % n


class FakePeer:
    """One client connection as the fake nsqd sees it."""

    def __init__(self, server: "FakeNSQD", stream: IOStream, address: Any) -> None:
        self.server = server
        self.stream = stream
        self.address = address
        self.commands: list[Command] = []
        self.transcript: list[str] = []
        self.identify: dict | None = None
        self.auth_secret: bytes | None = None
        self.closed = False
        self.tls_error: BaseException | None = None
        self._parser = CommandParser()
        self._parsed: deque[Command] = deque()
        self._codec: Codec | None = None
        self._next_id = 0
        self._last_write: Any = None

    # ---- reading ------------------------------------------------------------------------

    async def read_command(self) -> Command:
        """The next command from the client (recorded in the transcript). Raises
        StreamClosedError when the client went away."""
        while not self._parsed:
            data = await self.stream.read_bytes(65536, partial=True)
            if self._codec is not None:
                data = self._codec.decompress(data)
            self._parsed.extend(self._parser.feed(data))
        cmd = self._parsed.popleft()
        self._record(cmd)
        return cmd

    def _record(self, cmd: Command) -> None:
        self.commands.append(cmd)
        line = command_line(cmd)
        self.transcript.append(line)
        self.server._record(self, line)

    async def expect(self, name: str) -> Command:
        """Read the next command and check its name."""
        cmd = await self.read_command()
        if cmd.name != name.encode():
            raise AssertionError(f"fake nsqd expected {name}, got {command_line(cmd)!r}")
        return cmd

    # ---- writing ------------------------------------------------------------------------

    def write_raw(self, data: bytes) -> None:
        if self.closed:
            return
        if self._codec is not None:
            data = self._codec.compress(data)
        try:
            self._last_write = self.stream.write(data)
        except StreamClosedError:
            self.closed = True

    def send_response(self, data: bytes) -> None:
        self.write_raw(encode_frame(FRAME_TYPE_RESPONSE, data))

    def send_error(self, code: str, description: str = "") -> None:
        text = f"{code} {description}".strip().encode()
        self.write_raw(encode_frame(FRAME_TYPE_ERROR, text))

    def send_heartbeat(self) -> None:
        self.send_response(b"_heartbeat_")

    def send_message(self, body: bytes, attempts: int = 1, msg_id: bytes | None = None,
                     timestamp: int | None = None) -> bytes:
        """Deliver a message; returns its id."""
        if msg_id is None:
            msg_id = new_message_id(self._next_id)
            self._next_id += 1
        ts = time.time_ns() if timestamp is None else timestamp
        self.write_raw(encode_message(ts, attempts, msg_id, body))
        return msg_id

    def send_messages(self, bodies: list[bytes], attempts: int = 1) -> list[bytes]:
        """Several messages in one write (as nsqd's output buffer does)."""
        ids, frames = [], []
        for body in bodies:
            msg_id = new_message_id(self._next_id)
            self._next_id += 1
            ids.append(msg_id)
            frames.append(encode_message(time.time_ns(), attempts, msg_id, body))
        self.write_raw(b"".join(frames))
        return ids

    def close(self) -> None:
        self.closed = True
        if self.stream.socket is not None:
            self.stream.close()

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Until the client closed the connection (reads and records what it still sends)."""
        async def drain() -> None:
            try:
                while True:
                    await self.read_command()
            except StreamClosedError:
                self.closed = True
        await asyncio.wait_for(drain(), timeout)

    # ---- behaviour ----------------------------------------------------------------------

    async def handshake(self) -> dict:
        """Read the magic and IDENTIFY, answer, run the negotiated upgrades and AUTH like nsqd."""
        server = self.server
        cmd = await self.expect("IDENTIFY")
        magic = self._parser.magic
        if magic != b"  V2":
            raise AssertionError(f"bad magic {magic!r}")
        self.identify = json.loads(cmd.body or b"{}")
        if server.identify_response == b"OK":
            self.send_response(b"OK")
            return self.identify
        reply = dict(server.identify_response)
        tls = bool(self.identify.get("tls_v1")) and server.tls_context is not None
        snappy = bool(self.identify.get("snappy")) and reply.get("snappy", False)
        deflate = bool(self.identify.get("deflate")) and reply.get("deflate", False) and not snappy
        reply["tls_v1"] = tls
        reply["snappy"] = snappy
        reply["deflate"] = deflate
        if deflate:
            reply["deflate_level"] = min(int(self.identify.get("deflate_level", 6)),
                                         reply.get("max_deflate_level", 6))
        reply["auth_required"] = server.auth_secret is not None
        self.send_response(json.dumps(reply).encode())
        if tls:
            await self._settle()
            try:
                self.stream = await self.stream.start_tls(True, ssl_options=server.tls_context)
            except (ssl.SSLError, StreamClosedError, OSError) as exc:
                self.tls_error = exc  # the client refused us (or went away): not a script error
                self.closed = True
                return self.identify
            self.send_response(b"OK")
        if snappy or deflate:
            await self._settle()
            self._codec = make_codec("snappy" if snappy else "deflate", reply.get("deflate_level") or 6)
            self.send_response(b"OK")
        if server.auth_secret is not None:
            cmd = await self.read_command()
            if cmd.name != b"AUTH":
                self.send_error("E_AUTH_FIRST", f"AUTH required before {cmd.name.decode()}")
                self.close()
                return self.identify
            self.auth_secret = cmd.body
            if cmd.body != server.auth_secret:
                self.send_error("E_AUTH_FAILED", "AUTH failed")
                self.close()
                return self.identify
            self.send_response(json.dumps(
                {"identity": "test-user", "identity_url": "", "permission_count": 1}).encode())
        return self.identify

    async def _settle(self) -> None:
        # an upgrade needs the plaintext reply flushed first (tornado refuses start_tls otherwise)
        if self._last_write is not None:
            await self._last_write

    async def serve(self) -> None:
        """Answer commands like nsqd until the client closes (see the module docstring)."""
        responses = self.server.responses
        try:
            while True:
                cmd = await self.read_command()
                name = cmd.name.decode()
                if name in responses:
                    reply = responses[name]
                    data = reply(cmd) if callable(reply) else reply
                    if data is None:
                        continue
                    if data.startswith(b"E_"):
                        code, _, desc = data.decode().partition(" ")
                        self.send_error(code, desc)
                        if code not in ("E_FIN_FAILED", "E_REQ_FAILED", "E_TOUCH_FAILED"):
                            self.close()
                            return
                    else:
                        self.send_response(data)
                elif cmd.name in _AUTO_OK:
                    self.send_response(b"OK")
                elif cmd.name == b"CLS":
                    self.send_response(b"CLOSE_WAIT")
        except StreamClosedError:
            self.closed = True


async def default_handler(peer: FakePeer) -> None:
    await peer.handshake()
    if not peer.closed:
        await peer.serve()


class _Server(TCPServer):
    def __init__(self, fake: "FakeNSQD") -> None:
        super().__init__()
        self.fake = fake

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        await self.fake._handle(stream, address)


class FakeNSQD:
    """The fake server; see the module docstring."""

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        identify_response: dict | bytes | None = None,
        tls_context: ssl.SSLContext | None = None,
        auth_secret: bytes | None = None,
        responses: dict[str, Reply] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.handler = handler or default_handler
        base = dict(DEFAULT_IDENTIFY_RESPONSE)
        if isinstance(identify_response, dict):
            base.update(identify_response)
        self.identify_response: dict | bytes = b"OK" if identify_response == b"OK" else base
        self.tls_context = tls_context
        if tls_context is not None and isinstance(self.identify_response, dict):
            self.identify_response["tls_v1"] = True
        self.auth_secret = auth_secret
        self.responses: dict[str, Reply] = dict(responses or {})
        self.host = host
        self.port = 0
        self.peers: list[FakePeer] = []
        self.transcript: list[str] = []
        self.errors: list[BaseException] = []
        self._server: _Server | None = None
        self._changed: asyncio.Event | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> "FakeNSQD":
        import socket

        from tornado.netutil import bind_sockets

        sockets = bind_sockets(0, self.host, family=socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        self.port = sockets[0].getsockname()[1]
        self._server = _Server(self)
        self._server.add_sockets(sockets)
        self._changed = asyncio.Event()
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        for peer in self.peers:
            if peer.stream.socket is not None and not peer.stream.closed():
                peer.stream.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> "FakeNSQD":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, stream: IOStream, address: Any) -> None:
        peer = FakePeer(self, stream, address)
        self.peers.append(peer)
        self._notify()
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self.handler(peer)
        except StreamClosedError:
            peer.closed = True
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a broken script must fail the test, not vanish in a log
            self.errors.append(exc)
            if peer.stream.socket is not None:
                peer.stream.close()
        finally:
            if task is not None:
                self._tasks.discard(task)
            self._notify()

    def _record(self, peer: FakePeer, line: str) -> None:
        self.transcript.append(line)
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Until ``predicate()`` holds (re-checked whenever a command or connection arrives)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if self.errors:
                raise self.errors[0]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"fake nsqd: condition not met in {timeout}s; "
                                   f"transcript so far: {self.transcript}")
            assert self._changed is not None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))
            except asyncio.TimeoutError:
                pass

    async def wait_for(self, prefix: str, count: int = 1, timeout: float = 5.0) -> list[str]:
        """Until ``count`` commands whose line starts with ``prefix`` were received; returns them."""
        def matching() -> list[str]:
            return [line for line in self.transcript if line == prefix or line.startswith(prefix + " ")
                    or (prefix.endswith(" ") and line.startswith(prefix))]
        await self.wait_until(lambda: len(matching()) >= count, timeout)
        return matching()

    async def wait_peer(self, index: int = 0, timeout: float = 5.0) -> FakePeer:
        await self.wait_until(lambda: len(self.peers) > index, timeout)
        return self.peers[index]

    def check(self) -> None:
        """Raise the first exception a scripted handler raised."""
        if self.errors:
            raise self.errors[0]


def tls_contexts(tmp_dir: str | None = None) -> tuple[ssl.SSLContext, "Any"]:
    """(server SSLContext for 127.0.0.1/localhost, the trustme CA) for TLS tests."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    return server_ctx, ca


def write_ca(ca: Any, directory: str) -> str:
    """Write the trustme CA's PEM to ``directory`` and return its path (for ``ca_certs``)."""
    path = os.path.join(directory, "ca.pem")
    ca.cert_pem.write_to_path(path)
    return path


def run(coro: Awaitable[Any], timeout: float = 10.0) -> Any:
    """Run a test coroutine on a fresh event loop, bounded by ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


@contextlib.contextmanager
def silent_listener() -> Iterator[str]:
    """A port on 127.0.0.1 that accepts connections and never says a word (a service that is
    not nsqd, or a hung one); yields ``"host:port"``. A thread accepts, so it works without a
    running event loop."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                accepted.append(listener.accept()[0])
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for sock in accepted:
            sock.close()
