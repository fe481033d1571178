"""The consumer fast path of the protocol core: runs of message frames decoded in one loop
(FrameBuffer.next_messages), message objects built by a factory, and frames fed in pieces.

Every case is checked against the generic frame-by-frame decoder on the same bytes, whole, one
byte at a time and in random chunks."""

import json
import random
import struct

import pytest

from nsqcli.lib.protocol import events as ev
from nsqcli.lib.protocol.client import ClientProtocol
from nsqcli.lib.protocol.constants import FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE
from nsqcli.lib.protocol.errors import ProtocolError
from nsqcli.lib.protocol.frames import FrameBuffer, MessageFrame, encode_frame, encode_message


def mid(i):
    return b"%016x" % i


def mixed_stream(n=40, seed=1):
    """Messages of varied sizes (empty bodies too) with heartbeats and non-fatal errors between."""
    rng = random.Random(seed)
    parts, expected = [], []
    for i in range(n):
        body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 5, 100, 3000])))
        parts.append(encode_message(1_700_000_000_000_000_000 + i, 1 + i % 3, mid(i), body))
        expected.append(("msg", mid(i), body, 1_700_000_000_000_000_000 + i, 1 + i % 3))
        if i % 7 == 3:
            parts.append(encode_frame(FRAME_TYPE_RESPONSE, b"_heartbeat_"))
            expected.append(("frame", FRAME_TYPE_RESPONSE, b"_heartbeat_"))
        if i % 11 == 5:
            parts.append(encode_frame(FRAME_TYPE_ERROR, b"E_FIN_FAILED FIN x failed"))
            expected.append(("frame", FRAME_TYPE_ERROR, b"E_FIN_FAILED FIN x failed"))
    return b"".join(parts), expected


def drain(buf, out):
    while True:
        frame = buf.next_messages(lambda i, b, t, a: ("msg", i, b, t, a), out)
        if frame is None:
            return
        out.append(("frame",) + frame)


def chunkings(data, seed=7):
    rng = random.Random(seed)
    yield "whole", [data]
    yield "bytes", [data[i:i + 1] for i in range(len(data))]
    pieces, pos = [], 0
    while pos < len(data):
        step = rng.randrange(1, 700)
        pieces.append(data[pos:pos + step])
        pos += step
    yield "random", pieces


@pytest.mark.parametrize("how", ["whole", "bytes", "random"])
def test_next_messages_matches_the_generic_decoder(how):
    data, expected = mixed_stream()
    pieces = dict(chunkings(data))[how]
    buf, out = FrameBuffer(), []
    for piece in pieces:
        buf.feed(piece)
        drain(buf, out)
    assert out == expected
    assert buf.buffered == 0
    generic = FrameBuffer()
    generic.feed(data)
    assert len(generic.frames()) == len(expected)


def test_trailing_partial_frame_is_kept_and_completed_later():
    data, expected = mixed_stream(5)
    extra = encode_message(9, 1, mid(99), b"late body")
    buf, out = FrameBuffer(), []
    buf.feed(data + extra[:20])
    drain(buf, out)
    assert out == expected and buf.buffered == 20
    buf.feed(extra[20:])
    drain(buf, out)
    assert out[-1] == ("msg", mid(99), b"late body", 9, 1)
    assert buf.buffered == 0


def test_a_big_frame_in_many_pieces_waits_unjoined_until_complete():
    body = b"x" * 200_000
    frame = encode_message(1, 1, mid(1), body)
    buf, out = FrameBuffer(max_frame_size=1 << 20), []
    buf.feed(frame[:100])
    drain(buf, out)
    for start in range(100, len(frame) - 1000, 1000):
        buf.feed(frame[start:start + 1000])
        assert buf.next_frame() is None
        assert len(buf._pieces) > 0  # not joined on every piece (that would be quadratic)
    buf.feed(frame[start + 1000:])
    drain(buf, out)
    assert out == [("msg", mid(1), body, 1, 1)]
    assert buf.buffered == 0 and not buf._pieces


@pytest.mark.parametrize("cut", [3, 9])  # the next frame's header incomplete / complete
def test_pieces_fed_while_a_caller_stopped_early_are_not_lost(cut):
    """A caller may stop taking frames before the buffer is empty and feed more: the pieces
    waiting behind complete frames are joined as soon as a frame needs them."""
    big = encode_frame(FRAME_TYPE_RESPONSE, b"y" * 5000)
    ok = encode_frame(FRAME_TYPE_RESPONSE, b"OK")
    small = encode_frame(FRAME_TYPE_RESPONSE, b"small one")
    buf = FrameBuffer()
    buf.feed(big[:10])
    assert buf.next_frame() is None  # waiting for 5008 bytes
    buf.feed(big[10:] + ok + small[:cut])
    assert buf.next_frame() == (FRAME_TYPE_RESPONSE, b"y" * 5000)
    buf.feed(small[cut:])  # the caller stopped early: fewer bytes than the last frame needed
    assert buf.buffered == len(ok) + len(small)
    assert buf.next_frame() == (FRAME_TYPE_RESPONSE, b"OK")
    assert buf.next_frame() == (FRAME_TYPE_RESPONSE, b"small one")
    assert buf.next_frame() is None
    assert buf.buffered == 0


@pytest.mark.parametrize("size", [4 + 25, 2**31 - 1, -1])
def test_fast_path_leaves_bad_message_sizes_to_the_checks(size):
    buf = FrameBuffer(max_frame_size=1024)
    buf._checked_peer = True
    buf.feed(struct.pack(">ll", size, FRAME_TYPE_MESSAGE) + b"\x00" * 25)
    out = []
    if size == 29:  # a truncated message header: the frame comes back for decode_message
        assert buf.next_messages(lambda *a: a, out) == (FRAME_TYPE_MESSAGE, b"\x00" * 25)
    else:
        with pytest.raises(ProtocolError, match="invalid frame size"):
            buf.next_messages(lambda *a: a, out)
    assert out == []


def test_fast_path_still_refuses_an_http_peer():
    buf = FrameBuffer()
    buf.feed(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    with pytest.raises(ProtocolError, match="HTTP"):
        buf.next_messages(lambda *a: a, [])


# ---- ClientProtocol ---------------------------------------------------------------------

class Made:
    def __init__(self, id, body, timestamp, attempts):  # noqa: A002 - pynsq's Message order
        self.fields = (id, body, timestamp, attempts)


def subscribed(factory=None):
    proto = ClientProtocol({}, message_factory=factory)
    proto.initiate()
    proto.receive_data(encode_frame(FRAME_TYPE_RESPONSE, json.dumps({"max_rdy_count": 50}).encode()))
    proto.subscribe("t", "c")
    assert proto.receive_data(encode_frame(FRAME_TYPE_RESPONSE, b"OK")) == [ev.Response(b"OK", b"SUB")]
    return proto


@pytest.mark.parametrize("how", ["whole", "bytes", "random"])
def test_protocol_builds_messages_with_the_factory_in_order(how):
    data, expected = mixed_stream()
    proto = subscribed(Made)
    events = []
    for piece in dict(chunkings(data))[how]:
        events.extend(proto.receive_data(piece))
    got = []
    for item in events:
        if isinstance(item, Made):
            got.append(("msg",) + item.fields)
        elif isinstance(item, ev.Heartbeat):
            got.append(("frame", FRAME_TYPE_RESPONSE, b"_heartbeat_"))
        else:
            assert isinstance(item, ev.ErrorReceived) and not item.fatal
            got.append(("frame", FRAME_TYPE_ERROR, str(item.error).encode()))
    assert [g[:2] for g in got] == [e[:2] for e in expected]
    assert [g for g in got if g[0] == "msg"] == [e for e in expected if e[0] == "msg"]


def test_protocol_default_events_are_message_frames():
    proto = subscribed()
    events = proto.receive_data(encode_message(5, 2, mid(3), b"b") * 2)
    assert events == [MessageFrame(5, 2, mid(3), b"b")] * 2


def test_truncated_message_while_subscribed_is_a_protocol_error():
    proto = subscribed(Made)
    with pytest.raises(ProtocolError, match="too short"):
        proto.receive_data(encode_message(1, 1, mid(1), b"ok") + encode_frame(FRAME_TYPE_MESSAGE, b"\x00" * 20))


def test_messages_after_a_fatal_error_in_the_same_chunk_are_refused():
    proto = subscribed(Made)
    data = (encode_message(1, 1, mid(1), b"a") + encode_frame(FRAME_TYPE_ERROR, b"E_INVALID bad")
            + encode_message(2, 1, mid(2), b"b"))
    with pytest.raises(ProtocolError, match="message frame received while error"):
        proto.receive_data(data)
