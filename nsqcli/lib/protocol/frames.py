"""Server-to-client frames: decoding (client) and encoding (broker).

Frame layout::

    [int32 size][int32 frame type][data ...]      size counts type + data (so size >= 4)
    message data: [int64 timestamp ns][uint16 attempts][16-byte hex id][body ...]
"""

from __future__ import annotations

from struct import Struct
from typing import Callable, NamedTuple, TypeVar

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
_MESSAGE_FRAME_HEADER = Struct(">lLqH16s")  # size, frame type, then the message header
_MESSAGE_DATA = 8 + MESSAGE_HEADER_SIZE  # offset of a message body from the frame start
_MIN_MESSAGE_SIZE = 4 + MESSAGE_HEADER_SIZE  # frame size of a message with an empty body

T = TypeVar("T")

FRAME_TYPES = (FRAME_TYPE_RESPONSE, FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE)

_ANSWERED_HTTP = ("the peer is not an nsqd: it answered HTTP (an nsqd TCP endpoint is "
                  "required; is this an HTTP port?)")
_NOT_NSQD_PREFIXES = (
    (b"HTTP", _ANSWERED_HTTP),
    (b"<", _ANSWERED_HTTP),  # an HTML page without a status line (HTTP/0.9-style error replies)
    (b"\x15\x03", "got a TLS alert: the peer speaks TLS, not the NSQ protocol"),
    (b"\x16\x03", "got a TLS handshake: the peer speaks TLS, not the NSQ protocol"),
    (b"E_BA", None),  # old nsqd sends a bare error for a bad magic; handled by the size check
)


def _bad_size(size: int, limit: int, head: bytes) -> str:
    text = head.split(b"\n", 1)[0]
    if len(text) >= 4 and all(32 <= byte < 127 for byte in text[:8]):
        # printable text where a big-endian size should be: some other text protocol
        return (f"the peer is not an nsqd: it answered text ({text.decode('ascii', 'replace')!r}"
                f" where a frame size belongs)")
    return f"invalid frame size {size} (allowed 4..{limit})"


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

    Sizes below 4 or above the limit and unknown frame types raise :class:`ProtocolError` as soon
    as the frame's 8-byte header is in (nothing is reserved for the announced size: memory grows
    only with the bytes that really arrive); so does a peer that is evidently not nsqd (an HTTP
    server or a TLS endpoint). The limit is ``max_message_frame_size`` for message frames
    (default: ``max_frame_size``) and ``max_frame_size`` for every other frame.

    The unparsed bytes are kept as one immutable ``bytes`` object, so a frame's data is a single
    slice (one copy). A frame that arrives in many pieces is not re-joined on every piece: the
    pieces wait in a list until the frame is complete, so each byte is copied a bounded number of
    times whatever the chunking.
    """

    __slots__ = ("_buf", "_pos", "_pieces", "_pieces_size", "_need", "max_frame_size",
                 "max_message_frame_size", "_checked_peer")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 max_message_frame_size: int | None = None) -> None:
        self._buf = b""
        self._pos = 0
        self._pieces: list[bytes] = []  # fed while the next frame is still incomplete
        self._pieces_size = 0
        self._need = 0  # bytes (from _pos) that complete the next frame, once its header is known
        self.max_frame_size = max_frame_size
        self.max_message_frame_size = max_frame_size if max_message_frame_size is None else max_message_frame_size
        self._checked_peer = False

    def feed(self, data: bytes) -> None:
        rest = len(self._buf) - self._pos
        if not rest:
            self._buf = bytes(data)  # no copy when data is bytes already
            self._pos = 0
            return
        self._pieces.append(bytes(data))
        self._pieces_size += len(data)
        if rest + self._pieces_size >= self._need:
            self._join()

    def _join(self) -> None:
        pieces = self._pieces
        self._buf = b"".join([self._buf[self._pos:], *pieces])
        self._pos = 0
        pieces.clear()
        self._pieces_size = 0

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos + self._pieces_size

    def take_remaining(self) -> bytes:
        """Remove and return every byte not yet parsed (used when a compression layer starts)."""
        self._join()
        rest = self._buf
        self._buf = b""
        self._need = 0
        return rest

    def _check_peer(self) -> None:
        head = self._buf[self._pos:self._pos + 4]
        for prefix, reason in _NOT_NSQD_PREFIXES:
            if reason and head.startswith(prefix[: len(head)]) and len(head) >= len(prefix):
                raise ProtocolError(reason)
        self._checked_peer = True

    def next_frame(self) -> tuple[int, bytes] | None:
        buf = self._buf
        pos = self._pos
        available = len(buf) - pos
        if available < 8:
            if self._pieces:  # only when a caller stopped before an incomplete frame and fed
                self._join()
                return self.next_frame()
            self._need = 0  # the header is incomplete: join on every feed (at most 7 bytes)
            if available >= 4 and not self._checked_peer:
                self._check_peer()
            return None
        if not self._checked_peer:
            self._check_peer()
        size, frame_type = _SIZE_TYPE.unpack_from(buf, pos)
        limit = self.max_message_frame_size if frame_type == FRAME_TYPE_MESSAGE else self.max_frame_size
        if size < 4 or size > limit:
            raise ProtocolError(_bad_size(size, limit, buf[pos:pos + 32]))
        if frame_type > FRAME_TYPE_MESSAGE:
            raise ProtocolError(f"unknown frame type {frame_type}")
        end = pos + 4 + size
        if end > len(buf):
            self._need = 4 + size
            if self._pieces and available + self._pieces_size >= self._need:
                self._join()  # the pieces complete it (fed while a caller had stopped early)
                return self.next_frame()
            return None
        self._pos = end
        return frame_type, buf[pos + 8:end]

    def next_messages(self, make: Callable[[bytes, bytes, int, int], T], out: list[T]) -> tuple[int, bytes] | None:
        """The fast path while subscribed: decode every message frame at the front of the buffer
        into ``out`` as ``make(id, body, timestamp, attempts)``, then return the next other frame
        like :meth:`next_frame` (None when no complete frame is left)."""
        buf = self._buf
        pos = self._pos
        if not self._checked_peer:
            if len(buf) - pos < 4:
                return self.next_frame()
            self._check_peer()
        if not self._pieces:
            unpack = _MESSAGE_FRAME_HEADER.unpack_from  # frame and message headers in one call
            append = out.append
            limit = len(buf)
            last = limit - _MESSAGE_DATA  # the last offset where a whole message header fits
            max_size = self.max_message_frame_size
            message_type, min_size, data_offset = FRAME_TYPE_MESSAGE, _MIN_MESSAGE_SIZE, _MESSAGE_DATA
            while pos <= last:
                size, frame_type, timestamp, attempts, msg_id = unpack(buf, pos)
                end = pos + 4 + size
                # anything unusual (other frame type, bad size, incomplete) goes to next_frame
                if frame_type != message_type or size < min_size or size > max_size or end > limit:
                    break
                append(make(msg_id, buf[pos + data_offset:end], timestamp, attempts))
                pos = end
            self._pos = pos
        return self.next_frame()

    def frames(self) -> list[tuple[int, bytes]]:
        """Every complete frame buffered now."""
        out: list[tuple[int, bytes]] = []
        nxt = self.next_frame
        while True:
            frame = nxt()
            if frame is None:
                return out
            out.append(frame)
