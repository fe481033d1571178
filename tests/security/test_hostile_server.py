"""A hostile or wrong server on the nsqd TCP port: AsyncConn closes with a clear ProtocolError
(never buffering what a huge frame size announces), and nsq-tail / nsq-pub exit 1 with one line
on stderr and no traceback."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest
from security_peers import HostilePeer, HTTPOnTCPPort, TLSOnTCPPort
from security_tools import assert_one_line_error, run_tool

from nsqcli.lib import AsyncConn
from nsqcli.lib.protocol.constants import FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE
from nsqcli.lib.protocol.errors import Error, ProtocolError
from nsqcli.lib.protocol.frames import encode_frame

FLOOD = 64 * 1024 * 1024  # what a peer announcing 2 GiB would go on sending


def frame_header(size: int, frame_type: int) -> bytes:
    return struct.pack(">ll", size, frame_type)


def short_message() -> bytes:
    # a message frame whose data (10 bytes) cannot hold the 26-byte message header
    return frame_header(4 + 10, FRAME_TYPE_MESSAGE) + b"\x00" * 10


# (name, HostilePeer kwargs, what the error must say)
CASES = [
    ("negative-size", dict(payload=frame_header(-2, FRAME_TYPE_RESPONSE)), "invalid frame size -2"),
    ("zero-size", dict(payload=frame_header(0, FRAME_TYPE_RESPONSE)), "invalid frame size 0"),
    ("huge-size", dict(payload=frame_header(0x7FFFFFFF, FRAME_TYPE_RESPONSE) + b"\x00" * 1024,
                       flood=FLOOD), "invalid frame size 2147483647"),
    ("over-max-frame-size", dict(payload=frame_header(4 * 1024 * 1024 + 4, FRAME_TYPE_MESSAGE),
                                 after="sub", flood=FLOOD), "invalid frame size"),
    ("unknown-frame-type", dict(payload=frame_header(8, 7) + b"abcd"), "unknown frame type 7"),
    ("truncated-message-header", dict(payload=short_message(), after="sub"), "message frame too short"),
    ("identify-not-json", dict(payload=encode_frame(FRAME_TYPE_RESPONSE, b"{not json")),
     "invalid IDENTIFY response"),
    ("identify-json-array", dict(payload=encode_frame(FRAME_TYPE_RESPONSE, b"[1, 2]")),
     "invalid IDENTIFY response"),
    ("identify-bad-field", dict(payload=encode_frame(
        FRAME_TYPE_RESPONSE, json.dumps({"max_rdy_count": "lots"}).encode())), "max_rdy_count"),
    ("tls-alert", dict(payload=b"\x15\x03\x01\x00\x02\x02\x46", after="connect"), "TLS"),
]


async def connect_and_wait(peer: HostilePeer, subscribe: bool) -> AsyncConn:
    conn = AsyncConn("127.0.0.1", peer.port, timeout=2, max_frame_size=4 * 1024 * 1024)
    try:
        await conn.wait_ready(3)
        if subscribe:
            await asyncio.wait_for(conn.subscribe("t", "c"), 3)
            conn.send_rdy(1)
    except Error:
        pass
    await asyncio.wait_for(conn.closed_future, 3)
    return conn


@pytest.mark.parametrize("name, kwargs, expected", CASES, ids=[c[0] for c in CASES])
def test_async_conn_closes_with_a_clear_protocol_error(name, kwargs, expected):
    with HostilePeer(**kwargs) as peer:
        conn = asyncio.run(connect_and_wait(peer, kwargs.get("after") == "sub"))
        assert isinstance(conn.close_error, ProtocolError), repr(conn.close_error)
        assert expected in str(conn.close_error)
        assert peer.client_closed.wait(3), "the client kept the connection open"
        # a frame announced as huge is refused on its header, not read up to its size
        assert peer.flood_sent < 16 * 1024 * 1024


def test_http_server_on_the_tcp_port():
    with HTTPOnTCPPort() as server:
        conn = AsyncConn("127.0.0.1", server.port, timeout=2)
        with pytest.raises(ProtocolError, match="an nsqd TCP endpoint is required"):
            asyncio.run(conn.wait_ready(3))


@pytest.fixture(scope="module")
def server_context_factory():
    trustme = pytest.importorskip("trustme")
    import ssl

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")

    def factory() -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        return context

    return factory


def test_tls_server_on_the_tcp_port(server_context_factory):
    with TLSOnTCPPort(server_context_factory) as server:
        conn = AsyncConn("127.0.0.1", server.port, timeout=2)
        with pytest.raises(Error) as caught:
            asyncio.run(conn.wait_ready(3))
        assert conn.closed()
        text = str(caught.value)
        # the TLS server either answers with an alert or hangs up on the plaintext handshake
        assert "TLS" in text or "closed the connection" in text, text


# ---- the tools, as subprocesses --------------------------------------------------------------

TOOL_CASES = [case for case in CASES if case[0] in (
    "negative-size", "huge-size", "unknown-frame-type", "truncated-message-header",
    "identify-not-json", "tls-alert")]


@pytest.mark.parametrize("name, kwargs, expected", TOOL_CASES, ids=[c[0] for c in TOOL_CASES])
def test_nsq_tail_exits_1_with_one_line(name, kwargs, expected):
    with HostilePeer(**kwargs) as peer:
        result = run_tool(["nsq-tail", "--topic", "t", "--channel", "c", "-n", "1",
                           "--consumer-opt", "max_reconnect_interval=0.1",
                           "--nsqd-tcp-address", peer.address], timeout=20)
        # nsq-tail keeps reconnecting to a bad nsqd (as the Go tool does) unless it is the
        # only one and it failed during the handshake; either way it must not crash
        assert result.returncode == 1, result
        assert_one_line_error(result, expected)


@pytest.mark.parametrize("name, kwargs, expected", [c for c in TOOL_CASES if c[1].get("after") != "sub"],
                         ids=[c[0] for c in TOOL_CASES if c[1].get("after") != "sub"])
def test_nsq_pub_exits_1_with_one_line(name, kwargs, expected):
    with HostilePeer(**kwargs) as peer:
        result = run_tool(["nsq-pub", "--topic", "t", "-m", "x", "--retry-timeout", "1s",
                           "--nsqd-tcp-address", peer.address], timeout=20)
        assert result.returncode == 1, result
        assert_one_line_error(result, expected)


def test_tools_against_an_http_server(server_context_factory):
    with HTTPOnTCPPort() as server:
        for args in (["nsq-tail", "--topic", "t", "-n", "1"],
                     ["nsq-pub", "--topic", "t", "-m", "x", "--retry-timeout", "1s"]):
            result = run_tool([*args, "--nsqd-tcp-address", server.address], timeout=20)
            assert result.returncode == 1, result
            assert_one_line_error(result, "an nsqd TCP endpoint is required")


@pytest.mark.parametrize("tool", ["nsq-to-file", "nsq-replay"])
@pytest.mark.parametrize("name, kwargs, expected", [CASES[0], CASES[4]], ids=[CASES[0][0], CASES[4][0]])
def test_the_other_tools_exit_1_with_one_line(tool, name, kwargs, expected, tmp_path):
    if tool == "nsq-to-file":
        args = [tool, "--topic", "t", "--output-dir", tmp_path]
    else:
        archive = tmp_path / "t.host.2026-01-01_00.log"
        archive.write_bytes(b"x\n")
        args = [tool, "--topic", "t", "--retry-timeout", "1s", archive]
    with HostilePeer(**kwargs) as peer:
        result = run_tool([*args, "--nsqd-tcp-address", peer.address], timeout=20)
        assert result.returncode == 1, result
        assert_one_line_error(result, expected)


SYNC_CASES = [case for case in CASES[:5] if case[1].get("after") != "sub"]


@pytest.mark.parametrize("name, kwargs, expected", SYNC_CASES, ids=[c[0] for c in SYNC_CASES])
def test_sync_conn_refuses_malformed_frames(name, kwargs, expected):
    from nsqcli.lib.protocol import commands
    from nsqcli.lib.sync_conn import SyncConn

    with HostilePeer(**kwargs) as peer:
        conn = SyncConn(timeout=3)
        conn.connect("127.0.0.1", peer.port)
        try:
            conn.send(commands.identify({"feature_negotiation": True}))
            with pytest.raises(ProtocolError, match=expected):
                conn.read_response()
        finally:
            conn.close()
        assert peer.client_closed.wait(3)
        assert peer.flood_sent < 16 * 1024 * 1024


@pytest.mark.parametrize("tool", [["nsq-pub", "--topic", "t", "-m", "x"],
                                  ["nsq-tail", "--topic", "t", "-n", "1"]], ids=["pub", "tail"])
def test_control_characters_from_the_peer_cannot_drive_the_terminal(tool):
    # an error text with a terminal title sequence, a colour, a line break and rich markup
    text = b"E_INVALID [bold]x\x1b]0;pwned\x07 \x1b[31mred\r\nsecond line \x9b"
    with HostilePeer(encode_frame(1, text)) as peer:
        result = run_tool([*tool, "--nsqd-tcp-address", peer.address], timeout=20)
    assert result.returncode == 1, result
    assert_one_line_error(result, r"E_INVALID [bold]x\x1b]0;pwned\x07 \x1b[31mred\r\nsecond line")
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in result.stderr.rstrip("\n")), result
