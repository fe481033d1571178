"""Frames decoded whole, one byte at a time and with trailing bytes; size and peer checks."""

import struct

import pytest

from nsqcli.lib.protocol import frames
from nsqcli.lib.protocol.constants import FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE
from nsqcli.lib.protocol.errors import ProtocolError
from nsqcli.lib.protocol.frames import FrameBuffer, MessageFrame, decode_message, encode_frame, encode_message

MID = b"0a1b2c3d4e5f6789"

FRAMES = [
    (FRAME_TYPE_RESPONSE, b"OK"),
    (FRAME_TYPE_RESPONSE, b"_heartbeat_"),
    (FRAME_TYPE_ERROR, b"E_BAD_TOPIC PUB topic name \"a b\" is not valid"),
    (FRAME_TYPE_MESSAGE, struct.pack(">qH", 1_700_000_000_123_456_789, 3) + MID + b"body\x00\n"),
    (FRAME_TYPE_RESPONSE, b""),
]
STREAM = b"".join(encode_frame(t, d) for t, d in FRAMES)


def test_encode_frame_layout():
    assert encode_frame(FRAME_TYPE_RESPONSE, b"OK") == b"\x00\x00\x00\x06\x00\x00\x00\x00OK"


def test_encode_message_matches_generic_frame():
    data = encode_message(5, 2, MID, b"xyz")
    assert data == encode_frame(FRAME_TYPE_MESSAGE, struct.pack(">qH", 5, 2) + MID + b"xyz")


def test_decode_whole_buffer():
    buf = FrameBuffer()
    buf.feed(STREAM)
    assert buf.frames() == FRAMES
    assert buf.buffered == 0


def test_decode_one_byte_at_a_time():
    buf = FrameBuffer()
    out = []
    for byte in STREAM:
        buf.feed(bytes([byte]))
        out.extend(buf.frames())
    assert out == FRAMES


def test_decode_with_trailing_bytes_keeps_them():
    buf = FrameBuffer()
    tail = encode_frame(FRAME_TYPE_RESPONSE, b"OK")[:5]
    buf.feed(STREAM + tail)
    assert buf.frames() == FRAMES
    assert buf.buffered == 5
    assert buf.take_remaining() == tail
    assert buf.buffered == 0


def test_decode_message_fields():
    msg = decode_message(FRAMES[3][1])
    assert msg == MessageFrame(1_700_000_000_123_456_789, 3, MID, b"body\x00\n")


def test_decode_message_too_short():
    with pytest.raises(ProtocolError, match="too short"):
        decode_message(b"\x00" * 25)


@pytest.mark.parametrize("size", [-1, 0, 3, -(2**31)])
def test_rejects_sizes_below_four(size):
    buf = FrameBuffer()
    buf.feed(struct.pack(">ll", size, 0))
    with pytest.raises(ProtocolError, match="invalid frame size"):
        buf.next_frame()


def test_rejects_oversized_frame_before_buffering_it():
    buf = FrameBuffer(max_frame_size=1024)
    buf.feed(struct.pack(">ll", 1025, 0))
    with pytest.raises(ProtocolError, match=r"invalid frame size 1025 \(allowed 4..1024\)"):
        buf.next_frame()


def test_rejects_unknown_frame_type():
    buf = FrameBuffer()
    buf.feed(struct.pack(">ll", 4, 7))
    with pytest.raises(ProtocolError, match="unknown frame type 7"):
        buf.next_frame()


def test_http_reply_on_tcp_port_is_named():
    buf = FrameBuffer()
    buf.feed(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    with pytest.raises(ProtocolError, match="an nsqd TCP endpoint is required"):
        buf.next_frame()


def test_tls_alert_is_named():
    buf = FrameBuffer()
    buf.feed(b"\x15\x03\x01\x00\x02\x02\x46")
    with pytest.raises(ProtocolError, match="TLS"):
        buf.next_frame()


def test_unpack_response_helper():
    assert frames.unpack_response(b"\x00\x00\x00\x01E_INVALID x") == (1, b"E_INVALID x")
