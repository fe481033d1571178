"""Byte-exact encoders for every NSQ V2 command, and the parser the broker reads them with.

Wire layout (tcp_protocol_spec)::

    NAME[ param]*\\n                      simple command
    NAME[ param]*\\n [int32 size][body]   IDENTIFY, AUTH, PUB, DPUB, MPUB
    MPUB body: [int32 count] ([int32 len][bytes])*

Encoders validate their arguments and raise :class:`LocalProtocolError` (a ``ValueError``) with a
message that names the bad value; they never use ``assert``.
"""

from __future__ import annotations

import json
from struct import Struct
from typing import Any, Iterable, Sequence

from .errors import LocalProtocolError, ProtocolError
from .names import valid_channel_name, valid_topic_name
from .record import Record, set_field

#: a message body as the encoders take it (str is sent as its UTF-8 bytes)
Body = bytes | bytearray | memoryview | str

_INT32 = Struct(">l")
_pack_int32 = _INT32.pack

#: Commands that carry a size-prefixed body after their line.
BODY_COMMANDS = frozenset({b"IDENTIFY", b"AUTH", b"PUB", b"MPUB", b"DPUB"})
#: Commands nsqd answers with a response frame (OK, JSON or CLOSE_WAIT) when they succeed.
RESPONSE_COMMANDS = frozenset({b"IDENTIFY", b"AUTH", b"SUB", b"PUB", b"MPUB", b"DPUB", b"CLS"})


def _bytes(value: Body, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise LocalProtocolError(f"{what} must be bytes or str, not {type(value).__name__}")


def _topic(topic: str | bytes) -> bytes:
    if not valid_topic_name(topic):
        raise LocalProtocolError(f"invalid topic name {topic!r}")
    return _bytes(topic, "topic")


def _message_id(msg_id: str | bytes) -> bytes:
    mid = _bytes(msg_id, "message id")
    if len(mid) != 16:
        raise LocalProtocolError(f"message id must be 16 bytes, got {len(mid)}: {mid!r}")
    return mid


def _int(value: object, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LocalProtocolError(f"{what} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise LocalProtocolError(f"{what} must be >= {minimum}, got {value}")
    return value


def _body(data: Body, what: str = "message body") -> bytes:
    body = _bytes(data, what)
    if not body:
        raise LocalProtocolError(f"{what} must not be empty (nsqd rejects empty messages)")
    return body


def magic() -> bytes:
    return b"  V2"


def identify(data: dict[str, Any]) -> bytes:
    """``IDENTIFY\\n`` + size + JSON of ``data``."""
    if not isinstance(data, dict):
        raise LocalProtocolError(f"IDENTIFY data must be a dict, not {type(data).__name__}")
    body = json.dumps(data, separators=(",", ":")).encode("utf-8")
    return b"IDENTIFY\n" + _pack_int32(len(body)) + body


def auth(data: Body) -> bytes:
    secret = _bytes(data, "auth secret")
    if not secret:
        raise LocalProtocolError("auth secret must not be empty")
    return b"AUTH\n" + _pack_int32(len(secret)) + secret


def subscribe(topic: str | bytes, channel: str | bytes) -> bytes:
    if not valid_channel_name(channel):
        raise LocalProtocolError(f"invalid channel name {channel!r}")
    return b"SUB " + _topic(topic) + b" " + _bytes(channel, "channel") + b"\n"


def ready(count: int) -> bytes:
    return b"RDY %d\n" % _int(count, "RDY count")


def finish(id: str | bytes) -> bytes:  # noqa: A002 - pynsq's argument name
    return b"FIN " + _message_id(id) + b"\n"


def requeue(id: str | bytes, time_ms: int = 0) -> bytes:  # noqa: A002
    return b"REQ " + _message_id(id) + b" %d\n" % _int(time_ms, "requeue delay (ms)")


def touch(id: str | bytes) -> bytes:  # noqa: A002
    return b"TOUCH " + _message_id(id) + b"\n"


def nop() -> bytes:
    return b"NOP\n"


def cls() -> bytes:
    """``CLS``: ask nsqd to stop sending; it answers ``CLOSE_WAIT``."""
    return b"CLS\n"


def pub(topic: str | bytes, data: Body) -> bytes:
    body = _body(data)
    return b"PUB " + _topic(topic) + b"\n" + _pack_int32(len(body)) + body


def dpub(topic: str | bytes, delay_ms: int, data: Body) -> bytes:
    body = _body(data)
    delay = _int(delay_ms, "DPUB delay (ms)")
    return b"DPUB " + _topic(topic) + b" %d\n" % delay + _pack_int32(len(body)) + body


def mpub_body(data: Iterable[Body]) -> bytes:
    """The MPUB payload: ``[int32 count]([int32 len][bytes])*``."""
    bodies = [_body(item) for item in data]
    if not bodies:
        raise LocalProtocolError("MPUB needs at least one message")
    return _mpub_payload(bodies)


def _mpub_payload(bodies: list[bytes]) -> bytes:
    # the length prefixes and the bodies interleaved by C loops, not one Python step per body
    parts = [b""] * (2 * len(bodies))
    parts[0::2] = map(_pack_int32, map(len, bodies))
    parts[1::2] = bodies
    return _pack_int32(len(bodies)) + b"".join(parts)


def mpub_unchecked(topic: bytes, bodies: list[bytes]) -> bytes:
    """:func:`mpub` for arguments known to be valid -- a valid topic's bytes, a non-empty list of
    non-empty bytes -- checking nothing (the bulk publisher's path: it checked them once)."""
    payload = _mpub_payload(bodies)
    return b"MPUB " + topic + b"\n" + _pack_int32(len(payload)) + payload


def mpub(topic: str | bytes, data: Sequence[Body]) -> bytes:
    if isinstance(data, (bytes, str)):
        raise LocalProtocolError("MPUB takes a list of messages, not a single message")
    payload = mpub_body(data)
    return b"MPUB " + _topic(topic) + b"\n" + _pack_int32(len(payload)) + payload


# --------------------------------------------------------------------------------------------
# Parsing (the broker's side, and the scripted fake nsqd in the tests)


class Command(Record):
    """One command as received: its name, its space-separated params and its body if it has one."""

    __slots__ = ("name", "params", "body")
    name: bytes
    params: tuple[bytes, ...]
    body: bytes | None

    def __init__(self, name: bytes, params: tuple[bytes, ...] = (), body: bytes | None = None) -> None:
        set_field(self, "name", name)  # one per command the broker reads: no generic __init__
        set_field(self, "params", params)
        set_field(self, "body", body)

    def encode(self) -> bytes:
        line = b" ".join((self.name,) + self.params) + b"\n"
        if self.body is None:
            return line
        return line + _pack_int32(len(self.body)) + self.body


def parse_command_line(line: bytes) -> tuple[bytes, tuple[bytes, ...]]:
    """Split ``NAME p1 p2`` (newline already removed; a trailing CR is tolerated as nsqd does)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    parts = line.split(b" ")
    return parts[0], tuple(parts[1:])


def parse_mpub_body(payload: bytes, max_msg_size: int) -> list[bytes]:
    """Decode an MPUB payload; raises ProtocolError with nsqd's wording on malformed input."""
    if len(payload) < 4:
        raise ProtocolError("MPUB failed to read message count")
    (count,) = _INT32.unpack_from(payload, 0)
    if count <= 0:
        raise ProtocolError(f"MPUB invalid message count {count}")
    messages: list[bytes] = []
    offset = 4
    for _ in range(count):
        if offset + 4 > len(payload):
            raise ProtocolError("MPUB failed to read message body size")
        (size,) = _INT32.unpack_from(payload, offset)
        offset += 4
        if size <= 0:
            raise ProtocolError(f"MPUB invalid message({len(messages)}) body size {size}")
        if size > max_msg_size:
            raise ProtocolError(
                f"MPUB message too big {size} > {max_msg_size}"
            )
        if offset + size > len(payload):
            raise ProtocolError("MPUB failed to read message body")
        messages.append(payload[offset:offset + size])
        offset += size
    return messages


class CommandReader:
    """A byte buffer with the two reads nsqd makes: a line, and a size-prefixed body.

    The broker drives it step by step so that it can validate a command's params before its body
    arrives, exactly in nsqd's order. Each read returns ``None`` until enough bytes are buffered.
    """

    def __init__(self, max_line_length: int = 16 * 1024) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_line_length = max_line_length

    def feed(self, data: bytes) -> None:
        if self._pos and self._pos > 65536:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def read_exact(self, n: int) -> bytes | None:
        if len(self._buf) - self._pos < n:
            return None
        start = self._pos
        self._pos += n
        return bytes(self._buf[start:self._pos])

    def read_line(self) -> bytes | None:
        """The next line without its ``\\n``; ProtocolError when a line outgrows the limit."""
        end = self._buf.find(b"\n", self._pos)
        if end < 0:
            if len(self._buf) - self._pos > self.max_line_length:
                raise ProtocolError("command line too long")
            return None
        line = bytes(self._buf[self._pos:end])
        self._pos = end + 1
        return line

    def peek_size(self) -> int | None:
        """The next int32 body size without consuming it."""
        if len(self._buf) - self._pos < 4:
            return None
        size: int = _INT32.unpack_from(self._buf, self._pos)[0]
        return size

    def read_size(self) -> int | None:
        size = self.peek_size()
        if size is not None:
            self._pos += 4
        return size


class CommandParser:
    """Whole commands out of a byte stream: for tests and fakes that need no nsqd validation."""

    def __init__(self, max_body_size: int = 64 * 1024 * 1024) -> None:
        self._reader = CommandReader()
        self._pending: tuple[bytes, tuple[bytes, ...]] | None = None
        self.max_body_size = max_body_size
        self.magic: bytes | None = None

    def feed(self, data: bytes) -> list[Command]:
        self._reader.feed(data)
        out: list[Command] = []
        while True:
            cmd = self.next_command()
            if cmd is None:
                return out
            out.append(cmd)

    def next_command(self) -> Command | None:
        reader = self._reader
        if self.magic is None:
            self.magic = reader.read_exact(4)
            if self.magic is None:
                return None
        if self._pending is None:
            line = reader.read_line()
            if line is None:
                return None
            name, params = parse_command_line(line)
            if name not in BODY_COMMANDS:
                return Command(name, params)
            self._pending = (name, params)
        size = reader.peek_size()
        if size is None:
            return None
        if size < 0 or size > self.max_body_size:
            raise ProtocolError(f"{self._pending[0].decode()} invalid body size {size}")
        if reader.buffered < 4 + size:
            return None
        reader.read_size()
        body = reader.read_exact(size)
        name, params = self._pending
        self._pending = None
        return Command(name, params, body)
