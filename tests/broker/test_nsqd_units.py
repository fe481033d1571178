"""Unit tests of the embedded nsqd's parts: options, ids, queues and timers, parsing helpers,
and the NSQD start/stop interface the fixtures rely on."""

from __future__ import annotations

import asyncio
import socket

import pytest

from nsqcli.broker.nsqd import NSQD, NSQDOptions
from nsqcli.broker.nsqd.client import decode_identify
from nsqcli.broker.nsqd.http_api import HTTPError, parse_query
from nsqcli.broker.nsqd.message import GUIDFactory
from nsqcli.broker.nsqd.options import parse_address
from nsqcli.broker.nsqd.body_commands import read_mpub
from nsqcli.broker.nsqd.protocol_v2 import ClientErr, go_quote, parse_base10
from nsqcli.broker.nsqd.queue_scan import QueueScanner
from nsqcli.lib.protocol.commands import mpub_body

pytestmark = pytest.mark.embedded_only("unit tests of the embedded nsqd's Python parts")


def test_option_defaults_are_nsqd_v1_3_0s():
    opts = NSQDOptions()
    assert (opts.max_msg_size, opts.max_body_size, opts.max_rdy_count) == (1048576, 5242880, 2500)
    assert (opts.msg_timeout_ms, opts.max_msg_timeout_ms, opts.max_req_timeout_ms) == \
        (60000, 900000, 3600000)
    assert opts.snappy and opts.deflate and opts.mem_queue_size == 10000
    assert (opts.queue_scan_interval_ms, opts.queue_scan_refresh_interval_ms,
            opts.queue_scan_selection_count, opts.lookupd_ping_interval_ms) == (100, 5000, 20, 15000)


@pytest.mark.parametrize("kwargs", [
    {"max_rdy_count": -1}, {"msg_timeout_ms": "60"}, {"max_deflate_level": 10},
    {"tls_required": "yes"}, {"tls_cert": "c.pem"}, {"tls_required": True},
    {"tcp_address": "nohost"}, {"http_address": "h:99999"}, {"tls_client_auth_policy": "maybe"},
])
def test_bad_options_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        NSQDOptions(**kwargs)


def test_options_are_keyword_only_and_lists_are_copied():
    with pytest.raises(TypeError):
        NSQDOptions("127.0.0.1:0")  # type: ignore[misc]
    addresses = ["127.0.0.1:4160"]
    opts = NSQDOptions(lookupd_tcp_addresses=addresses, auth_http_addresses="127.0.0.1:1")
    assert opts.lookupd_tcp_addresses == addresses and opts.lookupd_tcp_addresses is not addresses
    assert opts.auth_http_addresses == ["127.0.0.1:1"]


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1:4150", ("127.0.0.1", 4150)), (":4150", ("0.0.0.0", 4150)),
    ("[::1]:0", ("::1", 0)), ("localhost:1", ("localhost", 1)),
])
def test_parse_address(address, expected):
    assert parse_address(address) == expected


def test_guids_are_unique_hex_and_increasing():
    factory = GUIDFactory(node_id=7)
    ids = [factory.new_id() for _ in range(20000)]  # more than 4096 per millisecond
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    assert ids == sorted(ids)


def test_go_quote():
    assert go_quote("a b") == '"a b"'
    assert go_quote('q"\\') == '"q\\"\\\\"'
    assert go_quote("\x01\n") == '"\\x01\\n"'


@pytest.mark.parametrize("raw, expected", [(b"12", 12), (b"", 0), (b"-1", None), (b"1x", None)])
def test_parse_base10(raw, expected):
    assert parse_base10(raw) == expected


def test_read_mpub():
    assert read_mpub(mpub_body([b"a", b"bc"]), 10, 100) == [b"a", b"bc"]
    with pytest.raises(ClientErr) as caught:
        read_mpub(b"\x00\x00\x00\x01\x00\x00\x00\x05ab", 10, 100)
    assert caught.value.code == "E_BAD_MESSAGE" and caught.value.fatal


def test_parse_query_is_gos():
    assert parse_query("topic=a&topic=b&x&y=%41+b") == {"topic": ["a", "b"], "x": [""], "y": ["A b"]}
    for bad in ("a=%zz", "a=1;b=2"):
        with pytest.raises(HTTPError):
            parse_query(bad)


def test_decode_identify_rejects_what_go_rejects():
    assert decode_identify({"heartbeat_interval": 1000, "extra": [1]}) == {"heartbeat_interval": 1000}
    assert decode_identify({"heartbeat_interval": None}) == {}
    for bad in ([], {"heartbeat_interval": True}, {"tls_v1": 1}, {"client_id": 5}, {"sample_rate": 1.5}):
        assert decode_identify(bad) is None


def test_non_fatal_errors():
    assert not ClientErr("E_FIN_FAILED", "x").fatal
    assert ClientErr("E_INVALID", "x").fatal


# ------------------------------------------------------------------ in-process broker


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_start_binds_and_stop_closes_clients():
    async def scenario():
        nsqd = NSQD(NSQDOptions(tcp_address="127.0.0.1:0", http_address="127.0.0.1:0"))
        await nsqd.start()
        assert nsqd.tcp_port > 0 and nsqd.http_port > 0
        reader, writer = await asyncio.open_connection("127.0.0.1", nsqd.tcp_port)
        writer.write(b"  V2NOP\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        assert len(nsqd.clients) == 1
        await nsqd.stop()
        assert await asyncio.wait_for(reader.read(), 2) == b""
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", nsqd.tcp_port)
        writer.close()

    run(scenario())


def test_restart_on_the_same_ports():
    async def scenario():
        first = NSQD(NSQDOptions())
        await first.start()
        ports = (first.tcp_port, first.http_port)
        await first.stop()
        second = NSQD(NSQDOptions(tcp_address=f"127.0.0.1:{ports[0]}",
                                  http_address=f"127.0.0.1:{ports[1]}"))
        await second.start()
        assert (second.tcp_port, second.http_port) == ports
        await second.stop()

    run(scenario())


# tornado.netutil.bind_sockets leaves the socket whose bind failed to the garbage collector
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_http_port_in_use_fails_start_and_frees_tcp():
    async def scenario():
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        nsqd = NSQD(NSQDOptions(http_address=f"127.0.0.1:{port}"))
        with pytest.raises(OSError):
            await nsqd.start()
        assert not nsqd.running
        blocker.close()

    run(scenario())


def test_in_flight_heap_is_compacted():
    async def scenario():
        nsqd = NSQD(NSQDOptions())
        await nsqd.start()
        try:
            topic = nsqd.get_topic("heap")
            channel = topic.get_channel("ch")

            class Client:
                id = 1
                rdy = 10**6
                in_flight = 0
                sample_rate = 0
                msg_timeout = 60.0

                def ready_for_messages(self):
                    return True

                def send_message(self, msg):
                    self.in_flight += 1

            client = Client()
            channel.clients[client.id] = client
            topic.put_messages([topic.new_message(b"%d" % i) for i in range(3000)])
            channel.dispatch()
            assert len(channel.in_flight) == 3000
            for msg_id in list(channel.in_flight):
                assert channel.finish(client, msg_id) is None
            channel.scan(nsqd.now())
            assert len(channel._in_flight_heap) <= 1024
        finally:
            await nsqd.stop()

    run(scenario())


class ScannedChannel:
    """What the queue scan sees of a channel: ``due`` messages to move, one per scan."""

    def __init__(self, due: int = 0) -> None:
        self.due = due
        self.scans = 0

    def scan(self, now: float) -> bool:
        self.scans += 1
        moved = self.due > 0
        self.due = max(0, self.due - 1)
        return moved


def test_queue_scan_serves_new_channels_only_after_a_refresh():
    channels = [ScannedChannel()]
    scanner = QueueScanner(lambda: channels, refresh_interval=5.0, selection_count=20)
    scanner.start(100.0)
    late = ScannedChannel(due=1)
    channels.append(late)
    scanner.tick(104.9, lambda: 104.9)
    assert (channels[0].scans, late.scans) == (1, 0)
    scanner.tick(105.0, lambda: 105.0)  # 5 s after the start: the list is read again
    assert late.scans >= 1 and late.due == 0


def test_queue_scan_picks_a_selection_and_repeats_while_a_quarter_is_dirty():
    channels = [ScannedChannel() for _ in range(40)]
    scanner = QueueScanner(lambda: channels, refresh_interval=5.0, selection_count=20)
    scanner.start(0.0)
    scanner.tick(0.1, lambda: 0.1)
    assert sorted(c.scans for c in channels) == [0] * 20 + [1] * 20  # 20 distinct channels
    for channel in channels:
        channel.scans, channel.due = 0, 1
    scanner.tick(0.2, lambda: 0.2)
    total = sum(c.scans for c in channels)
    assert total > 20 and total % 20 == 0  # whole selections again while > 25 % were dirty
