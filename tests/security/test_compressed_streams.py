"""The client state machine driven through snappy/deflate upgrades (the gap left by
tests/lib/test_protocol_fuzz.py, whose random bytes after an upgrade are rarely a valid
compressed stream), and compression bombs: a small compressed input announcing nonsense must fail
on its first frame header, not be inflated whole into memory.

``NSQCLI_FUZZ_EXAMPLES=20000`` runs the longer opt-in fuzzing.
"""

from __future__ import annotations

import asyncio
import json
import os
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_peers import HostilePeer

from nsqcli.lib import AsyncConn
from nsqcli.lib.protocol.client import ClientProtocol, State
from nsqcli.lib.protocol.compression import make_codec
from nsqcli.lib.protocol.constants import FRAME_TYPE_ERROR, FRAME_TYPE_RESPONSE
from nsqcli.lib.protocol.errors import Error, ProtocolError
from nsqcli.lib.protocol.frames import encode_frame, encode_message

EXAMPLES = int(os.environ.get("NSQCLI_FUZZ_EXAMPLES", "150"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
pytest.importorskip("cramjam")

OK = encode_frame(FRAME_TYPE_RESPONSE, b"OK")


def identify_reply(kind: str) -> bytes:
    body = {"max_rdy_count": 2500, "snappy": kind == "snappy", "deflate": kind == "deflate",
            "deflate_level": 6 if kind == "deflate" else 0}
    return encode_frame(FRAME_TYPE_RESPONSE, json.dumps(body).encode())


# frames nsqd may send a subscribed client at any time
valid_frames = st.one_of(
    st.just(encode_frame(FRAME_TYPE_RESPONSE, b"_heartbeat_")),
    st.builds(lambda n, body: encode_message(1_700_000_000_000_000_000, n, b"%016x" % n, body),
              st.integers(0, 65535), st.binary(max_size=300)),
    st.just(encode_frame(FRAME_TYPE_ERROR, b"E_FIN_FAILED FIN 0000000000000000 failed")),
)
hostile_frames = st.one_of(
    valid_frames, st.binary(max_size=24),
    st.builds(lambda size, kind: size.to_bytes(4, "big", signed=True) + kind.to_bytes(4, "big"),
              st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**32 - 1)),
    st.just(encode_frame(FRAME_TYPE_ERROR, b"E_INVALID fatal")),
)


def compressed_session(kind: str, writes: list[list[bytes]]) -> tuple[bytes, bytes]:
    """What nsqd sends after IDENTIFY: (the reply and the compressed OK ending the upgrade,
    then the OK answering SUB and each later write, compressed and flushed one by one)."""
    codec = make_codec(kind, 6)
    handshake = identify_reply(kind) + codec.compress(OK)
    return handshake, b"".join(codec.compress(b"".join(frames)) for frames in [[OK], *writes])


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def client(kind: str | None) -> ClientProtocol:
    proto = ClientProtocol({kind: True} if kind else {}, max_frame_size=4096)
    proto.initiate()
    return proto


def run_session(proto: ClientProtocol, handshake: list[bytes], rest: list[bytes]) -> list:
    """Feed the handshake, SUB once READY (as AsyncConn does), then the rest; events after SUB."""
    for piece in handshake:
        proto.receive_data(piece)
    assert proto.state is State.READY
    proto.subscribe("t", "c")
    events: list = []
    for piece in rest:
        events.extend(proto.receive_data(piece))
    return events


@fuzz
@given(st.sampled_from(["snappy", "deflate"]),
       st.lists(st.lists(valid_frames, min_size=1, max_size=5), max_size=6),
       st.lists(st.integers(min_value=0), max_size=6), st.lists(st.integers(min_value=0), max_size=12))
def test_compressed_streams_give_the_events_of_the_plain_stream(kind, writes, cuts1, cuts2):
    handshake, rest = compressed_session(kind, writes)
    compressed = client(kind)
    events = run_session(compressed, cut(handshake, cuts1), cut(rest, cuts2))
    assert compressed.compression == kind and compressed.state is State.SUBSCRIBED
    plain = client(None)
    plain_rest = OK + b"".join(frame for frames in writes for frame in frames)
    plain_events = run_session(plain, [encode_frame(FRAME_TYPE_RESPONSE, b"{}")], [plain_rest])
    assert events == plain_events


@fuzz
@given(st.sampled_from(["snappy", "deflate"]),
       st.lists(st.lists(hostile_frames, min_size=1, max_size=4), max_size=6),
       st.lists(st.integers(min_value=0), max_size=12),
       st.binary(max_size=16))
def test_hostile_frames_inside_compression_only_raise_protocol_errors(kind, writes, cuts, garbage):
    handshake, rest = compressed_session(kind, writes)
    proto = client(kind)
    try:
        run_session(proto, [handshake], cut(rest + garbage, cuts))  # garbage: not even compressed
    except Error:
        assert proto.state is State.ERROR
        assert proto.receive_data(b"more") == []  # an errored connection takes nothing more


def deflate_bomb(megabytes: int) -> bytes:
    codec = make_codec("deflate", 9)
    return codec.compress(OK) + codec.compress(b"\0" * (megabytes << 20))


def peak_mib(action) -> float:
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


def test_a_deflate_bomb_fails_on_its_first_frame_not_after_inflating():
    bomb = deflate_bomb(64)  # ~64 KiB on the wire, 64 MiB inflated
    assert len(bomb) < 100 * 1024
    proto = client("deflate")
    proto.receive_data(identify_reply("deflate"))

    def receive():
        with pytest.raises(ProtocolError, match="invalid frame size 0"):
            proto.receive_data(bomb)

    assert peak_mib(receive) < 8


def test_async_conn_survives_a_deflate_bomb_in_bounded_memory():
    with HostilePeer(identify_reply("deflate") + deflate_bomb(64)) as peer:
        async def main():
            conn = AsyncConn("127.0.0.1", peer.port, deflate=True, timeout=2)
            with pytest.raises(ProtocolError, match="invalid frame size"):
                await conn.wait_ready(3)
            return conn

        peak = peak_mib(lambda: asyncio.run(main()))
        assert peak < 32, f"{peak:.0f} MiB"


@pytest.mark.embedded_only("measures the embedded nsqd's memory in this process")
@pytest.mark.parametrize("same_write", [False, True], ids=["after-the-upgrade", "with-identify"])
def test_the_embedded_nsqd_refuses_a_deflate_bomb_in_bounded_memory(nsqd, same_write):
    import socket

    from nsqcli.lib.protocol import commands

    identify = b"  V2" + commands.identify({"deflate": True, "deflate_level": 6,
                                            "feature_negotiation": True})
    codec = make_codec("deflate", 9)
    # a valid PUB first (it must still be served), then a body size of 0 followed by zeros
    bomb = codec.compress(commands.pub("fine", b"ok")) + codec.compress(b"PUB t\n" + b"\0" * (64 << 20))
    with socket.create_connection((nsqd.host, nsqd.tcp_port), timeout=5) as sock:
        if not same_write:
            sock.sendall(identify)
            assert b'"deflate":true' in sock.recv(65536)

        def send_and_wait_closed():
            sock.sendall(identify + bomb if same_write else bomb)
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass

        peak = peak_mib(send_and_wait_closed)
    assert peak < 32, f"{peak:.0f} MiB"
    assert nsqd.topic_stats("fine")["message_count"] == 1
    assert nsqd.topic_stats("t") is None or nsqd.topic_stats("t")["message_count"] == 0
