"""Server-to-client frames: decoding (client) and encoding (broker).

Frame layout::

    [int32 size][int32 frame type][data ...]      size counts type + data (so size >= 4)
    message data: [int64 timestamp ns][uint16 attempts][16-byte hex id][body ...]
"""

from __future__ import annotations

from struct import Struct
from typing import NamedTuple

from .constants import (
    DEFAULT_MAX_FRAME_SIZE,
    FRAME_TYPE_ERROR,
    FRAME_TYPE_MESSAGE,
    FRAME_TYPE_RESPONSE,
    MESSAGE_HEADER_SIZE,
)
from .errors import ProtocolError

_SIZE_TYPE = Struct(">lL")
_FRAME_HEADER = Struct(">ll")
_MESSAGE_HEADER = Struct(">qH16s")

FRAME_TYPES = (FRAME_TYPE_RESPONSE, FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE)

_NOT_NSQD_PREFIXES = (
    (b"HTTP", "got an HTTP reply: an nsqd TCP endpoint is required (is this the HTTP port?)"),
    (b"\x15\x03", "got a TLS alert: the peer speaks TLS, not the NSQ protocol"),
    (b"\x16\x03", "got a TLS handshake: the peer speaks TLS, not the NSQ protocol"),
    (b"E_BA", None),  # old nsqd sends a bare error for a bad magic; handled by the size check
)


class MessageFrame(NamedTuple):
    """The fields of a message frame; ``id`` is the 16-byte hex id as bytes."""

    timestamp: int
    attempts: int
    id: bytes
    body: bytes


def decode_message(data: bytes) -> MessageFrame:
    """Decode the data of a message frame."""
    if len(data) < MESSAGE_HEADER_SIZE:
        raise ProtocolError(f"message frame too short: {len(data)} bytes, need {MESSAGE_HEADER_SIZE}")
    timestamp, attempts, msg_id = _MESSAGE_HEADER.unpack_from(data)
    return MessageFrame(timestamp, attempts, msg_id, data[MESSAGE_HEADER_SIZE:])


def encode_frame(frame_type: int, data: bytes) -> bytes:
    return _FRAME_HEADER.pack(len(data) + 4, frame_type) + data


def encode_message(timestamp: int, attempts: int, msg_id: bytes, body: bytes) -> bytes:
    """A complete message frame (header included)."""
    return (
        _FRAME_HEADER.pack(len(body) + MESSAGE_HEADER_SIZE + 4, FRAME_TYPE_MESSAGE)
        + _MESSAGE_HEADER.pack(timestamp, attempts, msg_id)
        + body
    )


def unpack_response(data: bytes) -> tuple[int, bytes]:
    """pynsq's helper: a frame without its size prefix -> (frame type, data)."""
    if len(data) < 4:
        raise ProtocolError(f"frame too short: {len(data)} bytes")
    return int.from_bytes(data[:4], "big"), data[4:]


class FrameBuffer:
    """Feed bytes, take ``(frame_type, data)`` pairs out.

    Sizes below 4 or above ``max_frame_size`` and unknown frame types raise :class:`ProtocolError`;
    so does a peer that is evidently not nsqd (an HTTP server or a TLS endpoint).
    """

    __slots__ = ("_buf", "_pos", "max_frame_size", "_checked_peer")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_frame_size = max_frame_size
        self._checked_peer = False

    def feed(self, data: bytes) -> None:
        buf = self._buf
        if self._pos:
            del buf[: self._pos]
            self._pos = 0
        buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def take_remaining(self) -> bytes:
        """Remove and return every byte not yet parsed (used when a compression layer starts)."""
        rest = bytes(self._buf[self._pos:])
        self._buf.clear()
        self._pos = 0
        return rest

    def _check_peer(self) -> None:
        head = bytes(self._buf[self._pos:self._pos + 4])
        for prefix, reason in _NOT_NSQD_PREFIXES:
            if reason and head.startswith(prefix[: len(head)]) and len(head) >= len(prefix):
                raise ProtocolError(reason)
        self._checked_peer = True

    def next_frame(self) -> tuple[int, bytes] | None:
        buf = self._buf
        pos = self._pos
        available = len(buf) - pos
        if available < 8:
            if available >= 4 and not self._checked_peer:
                self._check_peer()
            return None
        if not self._checked_peer:
            self._check_peer()
        size, frame_type = _SIZE_TYPE.unpack_from(buf, pos)
        if size < 4 or size > self.max_frame_size:
            raise ProtocolError(
                f"invalid frame size {size} (allowed 4..{self.max_frame_size})"
            )
        if frame_type > FRAME_TYPE_MESSAGE:
            raise ProtocolError(f"unknown frame type {frame_type}")
        end = pos + 4 + size
        if end > len(buf):
            return None
        data = bytes(buf[pos + 8:end])
        self._pos = end
        return frame_type, data

    def frames(self) -> list[tuple[int, bytes]]:
        """Every complete frame buffered now."""
        out = []
        nxt = self.next_frame
        while True:
            frame = nxt()
            if frame is None:
                return out
            out.append(frame)
