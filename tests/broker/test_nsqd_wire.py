"""A raw-socket NSQ client for the nsqd conformance tests, and tests of the wire basics.

The conformance tests drive nsqd through plain sockets and ``nsqcli.lib.protocol`` frames, so
they pin nsqd's bytes without depending on the client library; they run against the embedded
nsqd or a real one (NSQCLI_TEST_NSQD), so they assert only what nsqd v1.3.0 does.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from nsqcli.lib.protocol import commands as cmd
from nsqcli.lib.protocol.compression import make_codec
from nsqcli.lib.protocol.constants import FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE
from nsqcli.lib.protocol.frames import FrameBuffer, MessageFrame, decode_message

HEARTBEAT = b"_heartbeat_"


class RawNSQ:
    """One TCP connection to nsqd; reads frames with a deadline, can check that nsqd closed it.
    Every one is closed when its test ends (tests/broker/conftest.py)."""

    opened: list["RawNSQ"] = []

    def __init__(self, nsqd, magic: bytes | None = b"  V2", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", nsqd.tcp_port), timeout=timeout)
        RawNSQ.opened.append(self)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.frames = FrameBuffer()
        self.codec = None
        self.timeout = timeout
        self.heartbeats = 0
        if magic:
            self.sock.sendall(magic)

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        if self.codec is not None:
            data = self.codec.compress(data)
        self.sock.sendall(data)

    def _recv(self, deadline: float) -> bytes:
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("nsqd closed the connection")
        return self.codec.decompress(data) if self.codec is not None else data

    def read_frame(self, timeout: float | None = None, heartbeats: bool = False) -> tuple[int, bytes]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = self.frames.next_frame()
            if frame is not None:
                if frame == (FRAME_TYPE_RESPONSE, HEARTBEAT) and not heartbeats:
                    self.heartbeats += 1
                    continue
                return frame
            self.frames.feed(self._recv(deadline))

    def response(self) -> bytes:
        kind, data = self.read_frame()
        assert kind == FRAME_TYPE_RESPONSE, (kind, data)
        return data

    def ok(self) -> None:
        assert self.response() == b"OK"

    def error(self) -> bytes:
        kind, data = self.read_frame()
        assert kind == FRAME_TYPE_ERROR, (kind, data)
        return data

    def message(self, timeout: float | None = None) -> MessageFrame:
        kind, data = self.read_frame(timeout)
        assert kind == FRAME_TYPE_MESSAGE, (kind, data)
        return decode_message(data)

    def messages(self, count: int, timeout: float | None = None) -> list[MessageFrame]:
        return [self.message(timeout) for _ in range(count)]

    def nothing_for(self, seconds: float) -> None:
        """Assert that no frame (heartbeats aside) arrives within ``seconds``."""
        try:
            frame = self.read_frame(seconds)
        except (socket.timeout, TimeoutError):
            return
        raise AssertionError(f"unexpected frame {frame!r}")

    def is_closed(self, timeout: float = 3.0) -> bool:
        """True when nsqd closes the connection within ``timeout`` (heartbeats are skipped)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.frames.feed(self._recv(deadline))
                while (frame := self.frames.next_frame()) is not None:
                    if frame != (FRAME_TYPE_RESPONSE, HEARTBEAT):
                        raise AssertionError(f"unexpected frame before close {frame!r}")
        except (ConnectionError, OSError) as exc:
            return not isinstance(exc, (socket.timeout, TimeoutError))
        return False

    # -------------------------------------------------------------- conversations

    def identify(self, **fields) -> dict | bytes:
        self.send(cmd.identify(fields))
        data = self.response()
        return json.loads(data) if fields.get("feature_negotiation") else data

    def sub(self, topic: str, channel: str, rdy: int | None = None) -> None:
        self.send(cmd.subscribe(topic, channel))
        self.ok()
        if rdy is not None:
            self.send(cmd.ready(rdy))

    def pub(self, topic: str, body: bytes) -> None:
        self.send(cmd.pub(topic, body))
        self.ok()

    def upgrade(self, kind: str, level: int = 6) -> None:
        """Switch to snappy/deflate after nsqd's JSON reply, and read its compressed OK."""
        rest = self.frames.take_remaining()
        self.codec = make_codec(kind, level)
        if rest:
            self.frames.feed(self.codec.decompress(rest))
        self.ok()


def consumer(nsqd, topic: str, channel: str, rdy: int = 1, **identify) -> RawNSQ:
    conn = RawNSQ(nsqd)
    if identify:
        conn.identify(**identify)
    conn.sub(topic, channel, rdy)
    return conn


def fatal(conn: RawNSQ, expected: bytes) -> None:
    """nsqd answers ``expected`` (an error frame) and closes the connection."""
    assert conn.error() == expected
    assert conn.is_closed()


def still_open(conn: RawNSQ) -> None:
    """The connection still works: a PUB is answered OK."""
    conn.send(cmd.nop() + cmd.pub("still_open_check", b"x"))
    conn.ok()


# ------------------------------------------------------------------ wire basics


def test_bad_magic_gets_e_bad_protocol_and_close(nsqd):
    conn = RawNSQ(nsqd, magic=b"  V9")
    assert conn.read_frame() == (FRAME_TYPE_ERROR, b"E_BAD_PROTOCOL")
    assert conn.is_closed()


def test_invalid_command_is_fatal(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(b"FOO bar\n")
    fatal(conn, b"E_INVALID invalid command FOO")


def test_trailing_carriage_return_is_tolerated(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(b"PUB crlf_topic\r\n" + b"\x00\x00\x00\x02hi")
    conn.ok()
    assert nsqd.topic_stats("crlf_topic")["message_count"] == 1


def test_commands_split_byte_by_byte(nsqd):
    conn = RawNSQ(nsqd, magic=None)
    for byte in b"  V2" + cmd.pub("bytewise", b"hello") + cmd.nop():
        conn.send(bytes([byte]))
    conn.ok()
    assert nsqd.topic_stats("bytewise")["message_count"] == 1


def test_nop_has_no_response(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(cmd.nop())
    conn.nothing_for(0.3)
    still_open(conn)


def test_message_frame_layout(nsqd):
    before = time.time_ns()
    nsqd.pub("layout", b"payload")
    conn = consumer(nsqd, "layout", "ch")
    msg = conn.message()
    assert msg.body == b"payload"
    assert msg.attempts == 1
    assert len(msg.id) == 16 and all(c in b"0123456789abcdef" for c in msg.id)
    assert before - 5_000_000_000 < msg.timestamp < time.time_ns() + 5_000_000_000


def test_ids_are_unique(nsqd):
    nsqd.mpub("ids", [b"m%d" % i for i in range(200)])
    conn = consumer(nsqd, "ids", "ch", rdy=200)
    ids = {m.id for m in conn.messages(200)}
    assert len(ids) == 200


@pytest.mark.parametrize("line", [b"PUB\n", b"SUB a\n"])
def test_insufficient_params_are_fatal(nsqd, line):
    conn = RawNSQ(nsqd)
    conn.identify(heartbeat_interval=1000)
    conn.send(line)
    name = line.split()[0].decode()
    fatal(conn, f"E_INVALID {name} insufficient number of parameters".encode())
