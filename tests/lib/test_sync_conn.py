"""SyncConn against a tiny blocking server thread (and against the `nsqd` fixture when present)."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

import nsqcli.lib as nsq
from nsqcli.lib.errors import ConnectionClosedError, NSQTimeoutError, ProtocolError
from nsqcli.lib.protocol import encode_frame
from nsqcli.lib.sync_conn import SyncConn


class OneShotServer:
    """Accepts one connection, records what it receives, and sends a scripted reply."""

    def __init__(self, reply: bytes = b"", family: int = socket.AF_INET, close_after: bool = True,
                 read_bytes: int = 4) -> None:
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.reply = reply
        self.close_after = close_after
        self.read_bytes = read_bytes
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        client, _ = self.sock.accept()
        with client:
            while len(self.received) < self.read_bytes:
                data = client.recv(4096)
                if not data:
                    break
                self.received += data
            # send the reply in two pieces so that read_response must reassemble it
            half = len(self.reply) // 2
            client.sendall(self.reply[:half])
            client.sendall(self.reply[half:])
            if not self.close_after:
                self.release.wait(5)
        self.sock.close()

    def join(self) -> None:
        self.release.set()
        self.thread.join(5)


def test_connect_sends_magic_and_reads_frames_split_across_packets():
    reply = encode_frame(nsq.FRAME_TYPE_RESPONSE, b"OK") + encode_frame(nsq.FRAME_TYPE_ERROR, b"E_INVALID bad")
    server = OneShotServer(reply, read_bytes=4 + len(nsq.nop()))
    conn = SyncConn(timeout=2.0)
    conn.connect("127.0.0.1", server.port)
    conn.send(nsq.nop())
    assert nsq.unpack_response(conn.read_response()) == (nsq.FRAME_TYPE_RESPONSE, b"OK")
    assert nsq.unpack_response(conn.read_response()) == (nsq.FRAME_TYPE_ERROR, b"E_INVALID bad")
    conn.close()
    server.join()
    assert server.received == b"  V2NOP\n"


def test_ipv6_address():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = OneShotServer(encode_frame(0, b"OK"), family=socket.AF_INET6)
    except OSError:
        pytest.skip("cannot bind ::1")
    with SyncConn() as conn:
        conn.connect("::1", server.port)
        assert conn.address == f"[::1]:{server.port}"
        assert conn.read_response() == struct.pack(">l", 0) + b"OK"
    server.join()
    assert server.received == b"  V2"


def test_peer_closing_mid_frame_raises_connection_closed():
    server = OneShotServer(struct.pack(">l", 100) + b"\x00\x00\x00\x00partial")
    conn = SyncConn()
    conn.connect("127.0.0.1", server.port)
    sock = conn.s
    with pytest.raises(ConnectionClosedError, match="closed the connection"):
        conn.read_response()
    assert conn.s is None and sock.fileno() == -1  # closed, not left to the garbage collector
    server.join()


def test_http_server_on_the_tcp_port_is_a_protocol_error():
    server = OneShotServer(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    conn = SyncConn()
    conn.connect("127.0.0.1", server.port)
    sock = conn.s
    with pytest.raises(ProtocolError, match="nsqd TCP endpoint is required"):
        conn.read_response()
    assert conn.s is None and sock.fileno() == -1
    server.join()


def test_oversized_frame_is_a_protocol_error():
    server = OneShotServer(struct.pack(">ll", 2**30, 0))
    conn = SyncConn()
    conn.connect("127.0.0.1", server.port)
    sock = conn.s
    with pytest.raises(ProtocolError, match="invalid frame size"):
        conn.read_response()
    assert conn.s is None and sock.fileno() == -1
    with pytest.raises(ConnectionClosedError, match="not connected"):
        conn.read_response()
    server.join()


def test_read_timeout_names_the_stage():
    server = OneShotServer(b"", close_after=False)
    conn = SyncConn(timeout=0.2)
    conn.connect("127.0.0.1", server.port)
    with pytest.raises(NSQTimeoutError, match="while reading a response") as info:
        conn.read_response()
    assert isinstance(info.value, TimeoutError)
    assert conn.s is not None  # a timeout leaves the stream in step: the caller may read again
    conn.close()
    server.join()


def test_connection_refused_is_an_oserror_naming_the_address():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(ConnectionRefusedError, match=f"127.0.0.1:{port}"):
        SyncConn().connect("127.0.0.1", port)


def test_use_before_connect_and_bad_arguments():
    conn = SyncConn()
    with pytest.raises(ConnectionClosedError, match="not connected"):
        conn.send(b"NOP\n")
    with pytest.raises(ConnectionClosedError):
        conn.read_response()
    with pytest.raises(ValueError):
        SyncConn(timeout=0)
    with pytest.raises(ValueError):
        conn.connect("127.0.0.1", 0)
    with pytest.raises(TypeError):
        conn.connect(None, 4150)  # type: ignore[arg-type]


def test_publish_round_trip_against_nsqd(nsqd):
    conn = SyncConn(timeout=5.0)
    conn.connect(nsqd.host, nsqd.tcp_port)
    conn.send(nsq.identify({"feature_negotiation": False}))
    assert nsq.unpack_response(conn.read_response()) == (nsq.FRAME_TYPE_RESPONSE, b"OK")
    conn.send(nsq.pub("sync_conn_test", b"hello"))
    assert nsq.unpack_response(conn.read_response()) == (nsq.FRAME_TYPE_RESPONSE, b"OK")
    conn.send(b"PUB bad!topic\n" + struct.pack(">l", 1) + b"x")  # nsq.pub() would refuse the name
    frame_type, data = nsq.unpack_response(conn.read_response())
    assert frame_type == nsq.FRAME_TYPE_ERROR and data.startswith(b"E_BAD_TOPIC")
    conn.close()
    stats = nsqd.stats(topic="sync_conn_test")
    topics = {t["topic_name"]: t for t in stats["topics"]}
    assert topics["sync_conn_test"]["message_count"] == 1
