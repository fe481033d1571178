"""Hostile peers for the security tests, each in a thread of its own (plain sockets), so the
library (any event loop) and the tools (subprocesses) can be pointed at them alike.

:class:`HostilePeer` speaks just enough of the protocol to get a client where a test wants it
(IDENTIFY answered, SUB answered) and then sends the scripted bytes. It records whether the
client closed the connection, and when ``flood`` is set keeps sending filler after the script,
so a test can prove the client hung up instead of buffering what a huge frame size announced.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from typing import Callable

from nsqcli.lib.protocol.commands import CommandParser
from nsqcli.lib.protocol.constants import FRAME_TYPE_RESPONSE
from nsqcli.lib.protocol.frames import encode_frame

IDENTIFY_JSON = {"max_rdy_count": 2500, "version": "1.3.0", "max_msg_timeout": 900000,
                 "msg_timeout": 60000, "tls_v1": False, "deflate": False, "deflate_level": 0,
                 "max_deflate_level": 6, "snappy": False, "sample_rate": 0,
                 "auth_required": False, "output_buffer_size": 16384, "output_buffer_timeout": 250}
IDENTIFY_OK = encode_frame(FRAME_TYPE_RESPONSE, json.dumps(IDENTIFY_JSON).encode())
OK = encode_frame(FRAME_TYPE_RESPONSE, b"OK")


class _ThreadedServer:
    """Accept loop on 127.0.0.1:0; ``serve(sock)`` runs per connection in its own thread."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.connections = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept_thread = threading.Thread(target=self._accept, daemon=True)
        self._accept_thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(10)
            self.serve(sock)
        except OSError:
            pass
        finally:
            sock.close()

    def serve(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._accept_thread.join(2)
        self._listener.close()
        for thread in self._threads:
            thread.join(2)

    def __enter__(self) -> "_ThreadedServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HostilePeer(_ThreadedServer):
    """``after``: "connect" (send ``payload`` as soon as any byte arrives), "identify" (after
    IDENTIFY) or "sub" (IDENTIFY and SUB answered normally first). ``flood``: bytes of filler
    sent after the payload while the client keeps the connection open."""

    def __init__(self, payload: bytes, after: str = "identify", flood: int = 0,
                 identify_reply: bytes = IDENTIFY_OK) -> None:
        if after not in ("connect", "identify", "sub"):
            raise ValueError(f"after must be connect, identify or sub, not {after!r}")
        self.payload, self.after, self.flood = payload, after, flood
        self.identify_reply = identify_reply
        self.client_closed = threading.Event()
        self.flood_sent = 0
        self.commands: list[bytes] = []
        super().__init__()

    def serve(self, sock: socket.socket) -> None:
        parser = CommandParser()
        stage = "connect"
        while stage != self.after:
            data = sock.recv(65536)
            if not data:
                self.client_closed.set()
                return
            if stage == "connect" and self.after == "connect":
                break
            for cmd in parser.feed(data):
                self.commands.append(cmd.name)
                if cmd.name == b"IDENTIFY":
                    stage = "identify"
                    if self.after != "identify":
                        sock.sendall(self.identify_reply)
                elif cmd.name == b"SUB":
                    stage = "sub"
                    sock.sendall(OK)
            if stage == "connect" and self.after == "connect":
                break
        sock.sendall(self.payload)
        self._flood_and_wait(sock)

    def _flood_and_wait(self, sock: socket.socket) -> None:
        chunk = b"\x00" * 65536
        try:
            while self.flood_sent < self.flood:
                sock.sendall(chunk)
                self.flood_sent += len(chunk)
            while sock.recv(65536):  # what the client still sends (RDY, NOP, ...)
                pass
        except OSError:  # reset by the client: it hung up
            pass
        self.client_closed.set()


class HTTPOnTCPPort(_ThreadedServer):
    """What an HTTP server says to the bytes of an NSQ handshake."""

    def serve(self, sock: socket.socket) -> None:
        if sock.recv(65536):
            body = b"400 Bad Request"
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        time.sleep(0.2)


class TLSOnTCPPort(_ThreadedServer):
    """A real TLS server socket (Python's ssl) given the plaintext NSQ handshake."""

    def __init__(self, context_factory: Callable[[], ssl.SSLContext]) -> None:
        self._context = context_factory()
        super().__init__()

    def serve(self, sock: socket.socket) -> None:
        try:
            with self._context.wrap_socket(sock, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass
        time.sleep(0.2)
