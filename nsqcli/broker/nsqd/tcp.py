"""One TCP connection speaking protocol V2: magic, command reading, upgrades, suspension.

Commands are read step by step from a :class:`CommandReader` so a body command's params and size
are checked before its body arrives (nsqd reads its socket the same way). A handler that must wait
(AUTH's HTTP call, the TLS handshake) suspends command processing; bytes that arrive meanwhile
are buffered and processed in order afterwards.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
from typing import TYPE_CHECKING, Any

from nsqcli.lib.protocol.client import DECOMPRESS_PIECE_SIZE
from nsqcli.lib.protocol.commands import CommandReader
from nsqcli.lib.protocol.compression import make_codec
from nsqcli.lib.protocol.constants import FRAME_TYPE_ERROR, MAGIC_V2
from nsqcli.lib.protocol.errors import ProtocolError
from nsqcli.lib.protocol.frames import encode_frame

from . import body_commands, protocol_v2
from .client import ClientV2
from .protocol_v2 import ClientErr

if TYPE_CHECKING:
    from .server import NSQD

log = logging.getLogger("nsqcli.broker.nsqd")

TLS_HANDSHAKE_TIMEOUT = 5.0
#: nsqd reads command lines through a 16 KiB bufio.Reader; longer lines end the connection.
MAX_LINE_LENGTH = 16 * 1024


class V2Connection(asyncio.Protocol):
    def __init__(self, nsqd: "NSQD") -> None:
        self.nsqd = nsqd
        self.transport: Any = None
        self.client: ClientV2 = None  # type: ignore[assignment]  # set by connection_made()
        self.remote_ip = ""
        self._reader = CommandReader(MAX_LINE_LENGTH)
        self._magic_ok = False
        self._pending: tuple[body_commands.BodyCommand, tuple[bytes, ...]] | None = None
        self._size_checked = False
        self._busy = False
        self._closed = False
        self._codec: Any = None
        self._compressed_rest = b""  # read with the IDENTIFY that started compression
        self._task: asyncio.Task | None = None
        #: True while tls_required refuses every command but IDENTIFY
        self._tls_gate = nsqd.options.tls_required_tcp

    # ---------------------------------------------------------------- transport events

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername") or ("", 0)
        self.remote_ip = str(peer[0])
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        address = f"{host}:{peer[1]}"
        self.client = ClientV2(self.nsqd.next_client_id(), self.nsqd, address,
                               self._write, self._close_transport)
        self.nsqd.add_client(self.client)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._codec is None:
            self._receive(data)
            return
        try:
            # piece by piece: a small deflate bomb fails on its first command, not after being
            # inflated whole into memory
            for piece in self._codec.decompress_pieces(data, DECOMPRESS_PIECE_SIZE):
                self._receive(piece)
                if self._closed:
                    return
        except ProtocolError as exc:
            log.info("%r: %s", self.client, exc)
            self.client.close()

    def _receive(self, data: bytes) -> None:
        self.client.last_read = self.nsqd.now()
        self._reader.feed(data)
        if not self._busy:
            self._process()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        client = self.client
        if client is None:
            return
        client.closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if client.channel is not None:
            client.channel.remove_client(client)
        self.nsqd.remove_client(client)

    # ---------------------------------------------------------------- output

    def _write(self, data: bytes) -> None:
        if self._codec is not None:
            data = self._codec.compress(data)
        if not self.transport.is_closing():
            self.transport.write(data)

    def _close_transport(self) -> None:
        self._closed = True
        self.transport.close()

    # ---------------------------------------------------------------- command processing

    def _process(self) -> None:
        client = self.client
        client.hold = True
        try:
            self._process_commands()
        finally:
            client.hold = False
            client.flush()
        rest, self._compressed_rest = self._compressed_rest, b""
        if rest and not self._closed:
            self.data_received(rest)  # piece by piece, as everything compressed

    def _process_commands(self) -> None:
        reader = self._reader
        try:
            while not self._closed and not self._busy:
                if not self._magic_ok:
                    magic = reader.read_exact(4)
                    if magic is None:
                        return
                    if magic != MAGIC_V2:
                        self.transport.write(encode_frame(FRAME_TYPE_ERROR, b"E_BAD_PROTOCOL"))
                        self.client.close()
                        return
                    self._magic_ok = True
                    continue
                if self._pending is not None:
                    if not self._continue_body():
                        return
                    continue
                line = reader.read_line()
                if line is None:
                    return
                self._command(line)
        except ProtocolError as exc:  # a line longer than nsqd's read buffer
            log.info("%r: %s", self.client, exc)
            self.client.close()

    def _command(self, line: bytes) -> None:
        # parse_command_line's split, inlined: this is the per-FIN hot path
        if line[-1:] == b"\r":
            line = line[:-1]
        params = tuple(line.split(b" "))
        name = params[0]
        try:
            if self._tls_gate and name != b"IDENTIFY":
                protocol_v2.enforce_tls_policy(self, name)
            handler = protocol_v2.SIMPLE_COMMANDS.get(name)
            if handler is not None:
                result = handler(self, params)
                if result is not None:
                    self._respond(result)
                return
            spec = body_commands.BODY_COMMANDS.get(name)
            if spec is None:
                raise ClientErr("E_INVALID", f"invalid command {name.decode('utf-8', 'replace')}")
            result = spec.pre(self, params)
            self._pending = (spec, params)
            self._size_checked = False
            if inspect.isawaitable(result):
                self._suspend(result, respond=False)
        except ClientErr as err:
            self._fail(err)

    def _continue_body(self) -> bool:
        """Advance the pending body command; False while more bytes are needed."""
        spec, params = self._pending  # type: ignore[misc]  # called only while one is pending
        reader = self._reader
        size = reader.peek_size()
        if size is None:
            return False
        try:
            if not self._size_checked:
                spec.check_size(self, params, size)
                self._size_checked = True
            if reader.buffered < 4 + size:
                return False
            reader.read_size()
            body = reader.read_exact(size)
            assert body is not None  # buffered: checked above
            self._pending = None
            self._respond(spec.run(self, params, body))
        except ClientErr as err:
            self._pending = None
            self._fail(err)
        return True

    def _respond(self, result: Any) -> None:
        if isinstance(result, bytes):
            self.client.send_response(result)
        elif result is not None:
            self._suspend(result, respond=True)

    def _fail(self, err: ClientErr) -> None:
        self.client.send_error(err.frame_data())
        if err.fatal:
            self.client.close()

    def _suspend(self, awaitable: Any, respond: bool) -> None:
        self._busy = True
        self._task = asyncio.ensure_future(self._finish(awaitable, respond))

    async def _finish(self, awaitable: Any, respond: bool) -> None:
        try:
            result = await awaitable
        except ClientErr as err:
            self._pending = None
            self._fail(err)
            result = None
        except (OSError, asyncio.TimeoutError) as exc:
            log.info("%r: %s", self.client, exc)
            self.client.close()
            return
        except Exception:  # a bug must not leave the connection hanging
            log.exception("%r: command failed", self.client)
            self.client.close()
            return
        if self._closed:
            return
        if respond and result is not None:
            self.client.send_response(result)
        self._busy = False
        self._process()

    # ---------------------------------------------------------------- upgrades

    def upgrade_compression(self, kind: str, level: int) -> None:
        """Switch both directions to snappy/deflate and confirm with a compressed OK."""
        self.client.flush()
        leftover = self._reader
        self._codec = make_codec(kind, level)
        if kind == "snappy":
            self.client.snappy = True
        else:
            self.client.deflate = True
        # anything already buffered arrived compressed: run it through the new codec
        rest = leftover.read_exact(leftover.buffered) if leftover.buffered else b""
        self.client.send_response(protocol_v2.OK)
        if rest:
            self._compressed_rest = rest  # decompressed by _process once this command is done

    async def upgrade_tls(self, compression: tuple[str, int] | None) -> None:
        self.client.flush()
        loop = asyncio.get_running_loop()
        assert self.nsqd.ssl_context is not None  # IDENTIFY offers TLS only with a context
        transport = await loop.start_tls(
            self.transport, self, self.nsqd.ssl_context, server_side=True,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        if transport is None:
            raise OSError("TLS upgrade failed")
        self.transport = transport
        self.client.tls = True
        self._tls_gate = False
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            cipher = ssl_object.cipher() or ("", "", 0)
            self.client.tls_info = {"cipher": cipher[0], "version": _tls_version(ssl_object.version())}
        self.client.send_response(protocol_v2.OK)
        if compression:
            self.upgrade_compression(*compression)

    def tls_common_name(self) -> str:
        if not self.client.tls:
            return ""
        cert = self.transport.get_extra_info("peercert") or {}
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return value
        return ""


def _tls_version(name: str | None) -> str:
    return {"TLSv1": "TLS1.0", "TLSv1.1": "TLS1.1", "TLSv1.2": "TLS1.2",
            "TLSv1.3": "TLS1.3"}.get(name or "", name or "")
