"""SyncConn: pynsq's blocking connection to nsqd, with IPv6 and errors that say what went wrong.

Usage stays pynsq's::

    conn = SyncConn(timeout=1.0)
    conn.connect("127.0.0.1", 4150)        # sends the "  V2" magic
    conn.send(nsq.identify({...}))
    frame_type, data = nsq.unpack_response(conn.read_response())

``read_response()`` returns one frame without its size prefix (``[int32 type][data]``), as pynsq.
An error that leaves the stream unusable (a malformed frame, nsqd gone, a failed or timed-out
send) closes the socket before it is raised; a read timeout keeps it (read again, or close).
"""

from __future__ import annotations

import socket
import struct

from .protocol.constants import DEFAULT_MAX_FRAME_SIZE, MAGIC_V2
from .protocol.errors import ConnectionClosedError, NSQTimeoutError, ProtocolError, SendError
from .protocol.frames import FrameBuffer

_TYPE = struct.Struct(">l")


class SyncConn:
    """A blocking TCP connection to nsqd (IPv4, IPv6 or a host name)."""

    def __init__(self, timeout: float = 1.0, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self.s: socket.socket | None = None
        self.address = ""
        self._frames = FrameBuffer(max_frame_size)

    def __repr__(self) -> str:
        state = "connected" if self.s is not None else "not connected"
        return f"<SyncConn {self.address or '-'} {state}>"

    def connect(self, host: str, port: int) -> None:
        """Connect (IPv6 addresses such as ``"::1"`` work) and send the protocol magic."""
        if not isinstance(host, str) or not host:
            raise TypeError(f"host must be a non-empty str, not {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"port must be an int in 1..65535, got {port!r}")
        if self.s is not None:
            self.close()
        host = host.strip("[]")  # accept "[::1]" as well as "::1"
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._frames = FrameBuffer(self._frames.max_frame_size)
        try:
            sock = socket.create_connection((host, port), timeout=self.timeout)
        except socket.timeout:
            raise NSQTimeoutError("while connecting", self.timeout, self.address) from None
        except OSError as exc:
            # OSError(errno, ...) picks the matching subclass (ConnectionRefusedError, ...)
            raise OSError(exc.errno, f"cannot connect to nsqd at {self.address}: {exc.strerror or exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = sock
        self.send(MAGIC_V2)

    def send(self, data: bytes) -> None:
        """Send every byte of ``data`` (pynsq's ``send`` could silently send only part of it)."""
        sock = self._socket()
        try:
            sock.sendall(data)
        except socket.timeout:
            self.close()  # part of a command may have gone out: the stream is out of step
            raise NSQTimeoutError("while sending", self.timeout, self.address) from None
        except OSError as exc:
            self.close()
            raise SendError(f"failed to send to {self.address}", exc) from exc

    def read_response(self) -> bytes:
        """Block until one whole frame arrived; return it without its size: ``[int32 type][data]``.

        Raises ProtocolError for a malformed frame or a peer that is not nsqd and
        ConnectionClosedError when nsqd closes mid-way (both close the socket first), and
        NSQTimeoutError after ``timeout`` (the connection stays open).
        """
        sock = self._socket()
        try:
            return self._read_frame(sock)
        except (ProtocolError, ConnectionClosedError):
            self.close()
            raise

    def _read_frame(self, sock: socket.socket) -> bytes:
        frames = self._frames
        while True:
            frame = frames.next_frame()
            if frame is not None:
                frame_type, data = frame
                return _TYPE.pack(frame_type) + data
            try:
                packet = sock.recv(65536)
            except socket.timeout:
                raise NSQTimeoutError("while reading a response", self.timeout, self.address) from None
            except OSError as exc:
                raise ConnectionClosedError(f"connection to {self.address} failed: {exc}") from exc
            if not packet:
                raise ConnectionClosedError(
                    f"nsqd at {self.address} closed the connection "
                    f"({frames.buffered} bytes of an incomplete frame buffered)"
                )
            frames.feed(packet)

    def close(self) -> None:
        sock, self.s = self.s, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> "SyncConn":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _socket(self) -> socket.socket:
        if self.s is None:
            raise ConnectionClosedError("SyncConn is not connected: call connect(host, port) first")
        return self.s
