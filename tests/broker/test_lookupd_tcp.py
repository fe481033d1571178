"""nsqlookupd conformance over TCP (protocol V1) and what registrations show over HTTP.

Runs against the embedded nsqlookupd, or the real one when NSQCLI_TEST_NSQLOOKUPD is set.
"""

from __future__ import annotations

import json
import socket
import struct
import time

import pytest

IDENTITY = {
    "broadcast_address": "127.0.0.1",
    "tcp_port": 4150,
    "http_port": 4151,
    "version": "1.3.0",
    "hostname": "test-host",
}


class LookupPeer:
    """A raw nsqlookupd TCP client, as an nsqd would be."""

    def __init__(self, lookupd, magic: bytes = b"  V1") -> None:
        self.sock = socket.create_connection(("127.0.0.1", lookupd.tcp_port), timeout=5)
        self.local_address = "%s:%d" % self.sock.getsockname()[:2]
        if magic:
            self.sock.sendall(magic)

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError(f"closed after {data!r}")
            data += chunk
        return data

    def response(self) -> bytes:
        (size,) = struct.unpack(">l", self._read_exact(4))
        return self._read_exact(size)

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\n")
        return self.response()

    def identify(self, body: bytes | dict | None = None) -> bytes:
        if body is None:
            body = IDENTITY
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        self.sock.sendall(b"IDENTIFY\n" + struct.pack(">l", len(body)) + body)
        return self.response()

    def is_closed(self) -> bool:
        self.sock.settimeout(2)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def peers(nsqlookupd):
    opened: list[LookupPeer] = []

    def connect(lookupd=nsqlookupd, **kwargs) -> LookupPeer:
        peer = LookupPeer(lookupd, **kwargs)
        opened.append(peer)
        return peer

    yield connect
    for peer in opened:
        peer.close()


def wait_until(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------------
# the protocol


def test_bad_magic_is_answered_and_closed(peers):
    peer = peers(magic=b"  V2")
    assert peer.response() == b"E_BAD_PROTOCOL"
    assert peer.is_closed()


def test_ping_before_identify(peers):
    assert peers().command(b"PING") == b"OK"


def test_identify_replies_with_lookupd_info(peers, nsqlookupd):
    reply = json.loads(peers().identify())
    assert reply["tcp_port"] == nsqlookupd.tcp_port
    assert reply["http_port"] == nsqlookupd.http_port
    assert reply["broadcast_address"] == "127.0.0.1"
    assert isinstance(reply["version"], str) and reply["version"]
    assert isinstance(reply["hostname"], str) and reply["hostname"]


@pytest.mark.parametrize("body, error", [
    ({k: v for k, v in IDENTITY.items() if k != "tcp_port"}, b"E_BAD_BODY IDENTIFY missing fields"),
    ({**IDENTITY, "version": ""}, b"E_BAD_BODY IDENTIFY missing fields"),
    ({**IDENTITY, "broadcast_address": ""}, b"E_BAD_BODY IDENTIFY missing fields"),
    ({**IDENTITY, "http_port": 0}, b"E_BAD_BODY IDENTIFY missing fields"),
    (b"{not json", b"E_BAD_BODY IDENTIFY failed to decode JSON body"),
    ({**IDENTITY, "tcp_port": "4150"}, b"E_BAD_BODY IDENTIFY failed to decode JSON body"),
    (b"[1, 2]", b"E_BAD_BODY IDENTIFY failed to decode JSON body"),
])
def test_identify_errors_are_fatal(peers, body, error):
    peer = peers()
    assert peer.identify(body) == error
    assert peer.is_closed()


def test_identify_twice_is_fatal(peers):
    peer = peers()
    peer.identify()
    assert peer.identify() == b"E_INVALID cannot IDENTIFY again"
    assert peer.is_closed()


@pytest.mark.parametrize("line, error", [
    (b"REGISTER topic", b"E_INVALID client must IDENTIFY"),
    (b"UNREGISTER topic", b"E_INVALID client must IDENTIFY"),
    (b"FOO", b"E_INVALID invalid command FOO"),
    (b"", b"E_INVALID invalid command "),
])
def test_commands_before_identify(peers, line, error):
    peer = peers()
    assert peer.command(line) == error
    assert peer.is_closed()


@pytest.mark.parametrize("line, error", [
    (b"REGISTER", b"E_INVALID REGISTER insufficient number of params"),
    (b"UNREGISTER", b"E_INVALID UNREGISTER insufficient number of params"),
    (b"REGISTER bad!topic", b"E_BAD_TOPIC REGISTER topic name 'bad!topic' is not valid"),
    (b"REGISTER t bad!chan", b"E_BAD_CHANNEL REGISTER channel name 'bad!chan' is not valid"),
    (b"UNREGISTER " + b"x" * 65, b"E_BAD_TOPIC UNREGISTER topic name '" + b"x" * 65
     + b"' is not valid"),
    (b"NOP", b"E_INVALID invalid command NOP"),
])
def test_command_errors_after_identify_are_fatal(peers, line, error):
    peer = peers()
    peer.identify()
    assert peer.command(line) == error
    assert peer.is_closed()


def test_trailing_carriage_return_and_spaces_are_trimmed(peers, nsqlookupd):
    peer = peers()
    peer.identify()
    assert peer.command(b"REGISTER crlf_topic\r") == b"OK"
    assert peer.command(b"PING  ") == b"OK"
    assert "crlf_topic" in nsqlookupd.topics()


# ---------------------------------------------------------------------------------------------
# registrations as seen over HTTP


def test_register_shows_in_lookup_topics_channels_and_nodes(peers, nsqlookupd):
    peer = peers()
    peer.identify()
    assert peer.command(b"REGISTER reg_topic reg_chan") == b"OK"
    assert peer.command(b"REGISTER reg_topic") == b"OK"
    lookup = nsqlookupd.lookup("reg_topic")
    assert lookup["channels"] == ["reg_chan"]
    assert lookup["producers"] == [{**IDENTITY, "remote_address": peer.local_address}]
    assert nsqlookupd.topics() == ["reg_topic"]
    assert nsqlookupd.channels("reg_topic") == ["reg_chan"]
    (node,) = nsqlookupd.nodes()
    assert node == {**IDENTITY, "remote_address": peer.local_address,
                    "tombstones": [False], "topics": ["reg_topic"]}


def test_identified_peer_without_topics_is_a_node(peers, nsqlookupd):
    peers().identify()
    (node,) = wait_until(nsqlookupd.nodes)
    assert node["topics"] == [] and node["tombstones"] == []


def test_two_producers_of_one_topic(peers, nsqlookupd):
    first, second = peers(), peers()
    first.identify()
    second.identify({**IDENTITY, "tcp_port": 5150, "http_port": 5151})
    first.command(b"REGISTER shared")
    second.command(b"REGISTER shared")
    ports = sorted(p["tcp_port"] for p in nsqlookupd.lookup("shared")["producers"])
    assert ports == [4150, 5150]
    assert len(nsqlookupd.nodes()) == 2


def test_unregister_channel_keeps_it_unless_ephemeral(peers, nsqlookupd):
    peer = peers()
    peer.identify()
    peer.command(b"REGISTER t durable")
    peer.command(b"REGISTER t gone#ephemeral")
    assert sorted(nsqlookupd.channels("t")) == ["durable", "gone#ephemeral"]
    assert peer.command(b"UNREGISTER t durable") == b"OK"
    assert peer.command(b"UNREGISTER t gone#ephemeral") == b"OK"
    assert nsqlookupd.channels("t") == ["durable"]
    assert len(nsqlookupd.lookup("t")["producers"]) == 1  # still a producer of the topic


def test_unregister_topic_drops_the_producer_not_the_topic(peers, nsqlookupd):
    peer = peers()
    peer.identify()
    peer.command(b"REGISTER t c")
    assert peer.command(b"UNREGISTER t") == b"OK"
    assert nsqlookupd.lookup("t") == {"channels": ["c"], "producers": []}
    assert nsqlookupd.topics() == ["t"]
    assert nsqlookupd.nodes()[0]["topics"] == []


def test_unregister_ephemeral_topic_removes_it_with_its_last_producer(peers, nsqlookupd):
    first, second = peers(), peers()
    first.identify()
    second.identify({**IDENTITY, "tcp_port": 5150})
    first.command(b"REGISTER t#ephemeral")
    second.command(b"REGISTER t#ephemeral")
    first.command(b"UNREGISTER t#ephemeral")
    assert nsqlookupd.topics() == ["t#ephemeral"]
    second.command(b"UNREGISTER t#ephemeral")
    assert nsqlookupd.topics() == []


def test_unregister_unknown_is_ok(peers):
    peer = peers()
    peer.identify()
    assert peer.command(b"UNREGISTER never") == b"OK"
    assert peer.command(b"UNREGISTER never chan") == b"OK"


def test_disconnect_removes_the_producer_everywhere(peers, nsqlookupd):
    peer = peers()
    peer.identify()
    peer.command(b"REGISTER t c")
    peer.close()
    assert wait_until(lambda: nsqlookupd.nodes() == [])
    assert nsqlookupd.lookup("t") == {"channels": ["c"], "producers": []}


def test_inactive_producers_expire_and_ping_revives_them(peers, nsqlookupd_factory):
    lookupd = nsqlookupd_factory(inactive_producer_timeout_ms=300)
    peer = peers(lookupd)
    peer.identify()
    peer.command(b"REGISTER t")
    assert len(lookupd.lookup("t")["producers"]) == 1
    time.sleep(0.4)
    assert lookupd.lookup("t")["producers"] == []
    assert lookupd.nodes() == []
    assert peer.command(b"PING") == b"OK"
    assert len(lookupd.lookup("t")["producers"]) == 1
    assert len(lookupd.nodes()) == 1


def test_tombstone_hides_a_producer_for_its_lifetime(peers, nsqlookupd_factory):
    lookupd = nsqlookupd_factory(tombstone_lifetime_ms=300)
    peer = peers(lookupd)
    peer.identify()
    peer.command(b"REGISTER t")
    peer.command(b"REGISTER other")
    assert lookupd.http("POST", "/topic/tombstone", {"topic": "t", "node": "127.0.0.1:9999"}) \
        == (200, b"")
    assert len(lookupd.lookup("t")["producers"]) == 1  # another node: no effect
    assert lookupd.http("POST", "/topic/tombstone", {"topic": "t", "node": "127.0.0.1:4151"}) \
        == (200, b"")
    assert lookupd.lookup("t")["producers"] == []
    assert len(lookupd.lookup("other")["producers"]) == 1  # per topic
    (node,) = lookupd.nodes()  # /nodes still lists it, with the tombstone
    assert dict(zip(node["topics"], node["tombstones"])) == {"t": True, "other": False}
    time.sleep(0.35)
    assert len(lookupd.lookup("t")["producers"]) == 1


def test_nsqd_registers_its_topics_and_channels(nsqd_with_lookupd):
    nsqd, lookupd = nsqd_with_lookupd
    nsqd.create_topic("nsqd_topic")
    nsqd.create_channel("nsqd_topic", "nsqd_chan")
    lookupd.wait_for_producer(nsqd, topic="nsqd_topic")
    assert wait_until(lambda: lookupd.channels("nsqd_topic") == ["nsqd_chan"])
    (producer,) = lookupd.lookup("nsqd_topic")["producers"]
    assert (producer["broadcast_address"], producer["tcp_port"], producer["http_port"]) == (
        "127.0.0.1", nsqd.tcp_port, nsqd.http_port)
    nsqd.delete_topic("nsqd_topic")
    assert wait_until(lambda: lookupd.lookup("nsqd_topic")["producers"] == [])


def test_nsqd_restart_unregisters_then_registers_again(nsqd_with_lookupd):
    nsqd, lookupd = nsqd_with_lookupd
    nsqd.pub("survivor", b"m")
    lookupd.wait_for_producer(nsqd, topic="survivor")
    nsqd.stop()
    assert wait_until(lambda: lookupd.nodes() == [])
    assert lookupd.lookup("survivor")["producers"] == []
    nsqd.start()
    lookupd.wait_for_producer(nsqd, topic="survivor")
    assert len(lookupd.lookup("survivor")["producers"]) == 1


@pytest.mark.real_only("a real nsqd registering with the lookupd under test")
def test_real_nsqd_registers_with_this_lookupd(nsqd_with_lookupd):
    nsqd, lookupd = nsqd_with_lookupd
    assert nsqd.real
    nsqd.pub("real_topic", b"m")
    node = lookupd.wait_for_producer(nsqd, topic="real_topic")
    assert node["version"].startswith("1.")
    assert node["hostname"]
