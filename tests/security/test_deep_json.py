"""JSON nested deeper than Python's recursion limit ("[[[[...", a few hundred KiB) raises
RecursionError, not ValueError, from json.loads: every parser of peer or file input must turn it
into its own clear error (it escaped as a traceback or an exception on the broker's loop)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from security_peers import HostilePeer
from security_tools import assert_one_line_error, run_tool

from nsqcli.to_file.topic_discovery import parse_topics
from nsqcli.archive.format import RecordError, decode_jsonl
from nsqcli.lib import AsyncConn
from nsqcli.lib.lookupd import LookupdError, parse_producers
from nsqcli.lib.protocol.client import ClientProtocol
from nsqcli.lib.protocol.constants import FRAME_TYPE_RESPONSE
from nsqcli.lib.protocol.errors import ProtocolError
from nsqcli.lib.protocol.frames import encode_frame
from nsqcli.cli.lookupd_nodes import parse_nodes

DEEP = b"[" * 200_000


def test_client_identify_and_auth_responses():
    proto = ClientProtocol({}, max_frame_size=1 << 20)
    proto.initiate()
    with pytest.raises(ProtocolError, match="invalid IDENTIFY response"):
        proto.receive_data(encode_frame(FRAME_TYPE_RESPONSE, DEEP))
    proto = ClientProtocol({}, auth_secret=b"s", max_frame_size=1 << 20)
    proto.initiate()
    proto.receive_data(encode_frame(FRAME_TYPE_RESPONSE, b'{"auth_required": true}'))
    with pytest.raises(ProtocolError, match="AUTH response is not JSON"):
        proto.receive_data(encode_frame(FRAME_TYPE_RESPONSE, DEEP))


def test_async_conn_against_a_deep_identify_response():
    with HostilePeer(encode_frame(FRAME_TYPE_RESPONSE, DEEP)) as peer:
        conn = AsyncConn("127.0.0.1", peer.port, timeout=2)
        with pytest.raises(ProtocolError, match="invalid IDENTIFY response"):
            asyncio.run(conn.wait_ready(3))


@pytest.mark.parametrize("parse, error", [
    (parse_producers, LookupdError), (parse_topics, LookupdError), (parse_nodes, LookupdError),
    (decode_jsonl, RecordError),
], ids=["lookupd-lookup", "lookupd-topics", "lookupd-nodes", "jsonl-record"])
def test_parsers_of_lookupd_answers_and_archives(parse, error):
    with pytest.raises(error):
        parse(DEEP)


def test_nsq_replay_reports_a_deep_jsonl_record_on_one_line(tmp_path):
    archive = tmp_path / "t.host.2026-01-01_00.log"
    archive.write_bytes(DEEP + b"\n")
    result = run_tool(["nsq-replay", "--dry-run", "--format", "jsonl", "--topic", "t", archive])
    assert result.returncode == 1, result
    assert_one_line_error(result, "invalid JSON")
    skipped = run_tool(["nsq-replay", "--dry-run", "--skip-bad", "--format", "jsonl", "--topic", "t",
                        archive])
    assert skipped.returncode == 0 and "Traceback" not in skipped.stderr, skipped


def first_frame(sock: socket.socket) -> bytes:
    """The daemon's first answer frame, whole (a Go daemon may send its size apart)."""
    data = b""
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_nsqd_answers_a_deep_identify_with_e_bad_body(nsqd):
    with socket.create_connection((nsqd.host, nsqd.tcp_port), timeout=5) as sock:
        sock.sendall(b"  V2IDENTIFY\n" + len(DEEP).to_bytes(4, "big") + DEEP)
        reply = first_frame(sock)
    assert b"E_BAD_BODY" in reply
    assert nsqd.ping()


def test_nsqlookupd_answers_a_deep_identify_with_e_bad_body(nsqlookupd):
    host, port = nsqlookupd.tcp_address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"  V1IDENTIFY\n" + len(DEEP).to_bytes(4, "big") + DEEP)
        reply = first_frame(sock)
    assert b"E_BAD_BODY" in reply
    assert nsqlookupd.ping()
