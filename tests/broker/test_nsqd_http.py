"""nsqd's HTTP API: status codes, bodies, headers and /stats shape (nsqd/http.go)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from nsqcli.lib.protocol.commands import mpub_body

from test_nsqd_wire import RawNSQ, consumer


def error(nsqd, method, path, params=None, body=None) -> tuple[int, str]:
    status, data = nsqd.http(method, path, params, body)
    return status, json.loads(data)["message"]


def test_ping(nsqd):
    assert nsqd.http("GET", "/ping") == (200, b"OK")


def test_info(nsqd):
    info = nsqd.http_json("GET", "/info")
    assert info["tcp_port"] == nsqd.tcp_port and info["http_port"] == nsqd.http_port
    assert info["broadcast_address"] == "127.0.0.1"
    assert info["max_heartbeat_interval"] == 60_000_000_000  # a Go duration: nanoseconds
    assert info["max_output_buffer_size"] == 65536
    assert info["max_output_buffer_timeout"] == 30_000_000_000
    assert info["max_deflate_level"] == 6
    assert {"version", "hostname", "start_time"} <= set(info)


def test_v1_header_and_error_body(nsqd):
    request = urllib.request.Request(f"http://{nsqd.http_address}/topic/delete?topic=none",
                                     data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 404
    assert caught.value.headers["X-NSQ-Content-Type"] == "nsq; version=1.0"
    assert json.loads(caught.value.read()) == {"message": "TOPIC_NOT_FOUND"}


def test_unknown_path_and_wrong_method(nsqd):
    assert error(nsqd, "GET", "/nope") == (404, "NOT_FOUND")
    assert error(nsqd, "GET", "/pub", {"topic": "t"}) == (405, "METHOD_NOT_ALLOWED")


def test_pub(nsqd):
    assert nsqd.http("POST", "/pub", {"topic": "hp"}, b"body") == (200, b"OK")
    assert nsqd.topic_stats("hp")["message_count"] == 1


@pytest.mark.parametrize("params, body, expected", [
    ({}, b"x", (400, "MISSING_ARG_TOPIC")),
    ({"topic": "bad!"}, b"x", (400, "INVALID_TOPIC")),
    ({"topic": "t"}, b"", (400, "MSG_EMPTY")),
    ({"topic": "t", "defer": "soon"}, b"x", (400, "INVALID_DEFER")),
    ({"topic": "t", "defer": "-1"}, b"x", (400, "INVALID_DEFER")),
    ({"topic": "t", "defer": "3600001"}, b"x", (400, "INVALID_DEFER")),
])
def test_pub_errors(nsqd, params, body, expected):
    assert error(nsqd, "POST", "/pub", params, body) == expected


def test_pub_too_big(nsqd_factory):
    nsqd = nsqd_factory(max_msg_size=10)
    assert error(nsqd, "POST", "/pub", {"topic": "t"}, b"x" * 11) == (413, "MSG_TOO_BIG")
    assert nsqd.http("POST", "/pub", {"topic": "t"}, b"x" * 10)[0] == 200


def test_mpub_newline_separated(nsqd):
    assert nsqd.http("POST", "/mpub", {"topic": "mp"}, b"a\n\nb\nc\n") == (200, b"OK")
    conn = consumer(nsqd, "mp", "ch", rdy=5)
    assert [m.body for m in conn.messages(3)] == [b"a", b"b", b"c"]


def test_mpub_binary(nsqd):
    body = mpub_body([b"x\ny", b"z"])
    assert nsqd.http("POST", "/mpub", {"topic": "mpb", "binary": "true"}, body) == (200, b"OK")
    conn = consumer(nsqd, "mpb", "ch", rdy=5)
    assert [m.body for m in conn.messages(2)] == [b"x\ny", b"z"]


def test_mpub_errors(nsqd_factory):
    nsqd = nsqd_factory(max_msg_size=10, max_body_size=100)
    assert error(nsqd, "POST", "/mpub", {"topic": "t"}, b"x" * 101) == (413, "BODY_TOO_BIG")
    assert error(nsqd, "POST", "/mpub", {"topic": "t"}, b"x" * 11 + b"\n") == (413, "MSG_TOO_BIG")
    binary = {"topic": "t", "binary": "true"}
    assert error(nsqd, "POST", "/mpub", binary, b"\x00\x00\x00\x00") == (413, "BAD_BODY")
    assert error(nsqd, "POST", "/mpub", binary, mpub_body([b"y" * 11])) == (413, "BAD_MESSAGE")
    assert error(nsqd, "POST", "/mpub", {}, b"x") == (400, "MISSING_ARG_TOPIC")


def test_topic_endpoints(nsqd):
    assert nsqd.http("POST", "/topic/create", {"topic": "tc"}) == (200, b"")
    assert nsqd.topic_stats("tc") is not None
    assert error(nsqd, "POST", "/topic/create", {}) == (400, "MISSING_ARG_TOPIC")
    assert error(nsqd, "POST", "/topic/create", {"topic": "a b"}) == (400, "INVALID_TOPIC")
    nsqd.pub("tc", b"held")
    assert nsqd.http("POST", "/topic/empty", {"topic": "tc"}) == (200, b"")
    assert nsqd.topic_stats("tc")["depth"] == 0
    for action in ("empty", "pause", "unpause", "delete"):
        assert error(nsqd, "POST", f"/topic/{action}", {"topic": "none"}) == (404, "TOPIC_NOT_FOUND")
    assert error(nsqd, "POST", "/topic/empty", {"topic": "bad!"}) == (400, "INVALID_TOPIC")
    assert nsqd.http("POST", "/topic/delete", {"topic": "tc"}) == (200, b"")
    assert nsqd.topic_stats("tc") is None


def test_channel_endpoints(nsqd):
    assert error(nsqd, "POST", "/channel/create", {"topic": "ct", "channel": "c"}) == \
        (404, "TOPIC_NOT_FOUND")
    nsqd.create_topic("ct")
    assert error(nsqd, "POST", "/channel/create", {"topic": "ct"}) == (400, "MISSING_ARG_CHANNEL")
    assert error(nsqd, "POST", "/channel/create", {"topic": "ct", "channel": "a b"}) == \
        (400, "INVALID_ARG_CHANNEL")
    assert error(nsqd, "POST", "/channel/create", {"topic": "b!", "channel": "c"}) == \
        (400, "INVALID_ARG_TOPIC")
    assert nsqd.http("POST", "/channel/create", {"topic": "ct", "channel": "c"}) == (200, b"")
    for action in ("pause", "unpause", "empty", "delete"):
        assert nsqd.http("POST", f"/channel/{action}", {"topic": "ct", "channel": "c"})[0] == 200
        assert error(nsqd, "POST", f"/channel/{action}", {"topic": "ct", "channel": "x"}) == \
            (404, "CHANNEL_NOT_FOUND")
    assert nsqd.channel_stats("ct", "c") is None


def test_stats_json_shape(nsqd):
    nsqd.pub("shape", b"m")
    conn = consumer(nsqd, "shape", "ch", rdy=1)
    conn.message()
    stats = nsqd.stats()
    assert {"version", "health", "start_time", "topics", "producers"} <= set(stats)
    assert stats["health"] == "OK"
    topic = next(t for t in stats["topics"] if t["topic_name"] == "shape")
    assert {"topic_name", "channels", "depth", "backend_depth", "message_count",
            "message_bytes", "paused", "e2e_processing_latency"} <= set(topic)
    channel = topic["channels"][0]
    assert {"channel_name", "depth", "backend_depth", "in_flight_count", "deferred_count",
            "message_count", "requeue_count", "timeout_count", "client_count", "clients",
            "paused", "e2e_processing_latency"} <= set(channel)
    assert channel["in_flight_count"] == 1
    client = channel["clients"][0]
    assert {"client_id", "hostname", "version", "remote_address", "state", "ready_count",
            "in_flight_count", "message_count", "finish_count", "requeue_count", "connect_ts",
            "sample_rate", "deflate", "snappy", "user_agent", "tls"} <= set(client)
    assert client["version"] == "V2" and client["in_flight_count"] == 1


def test_stats_filters_and_options(nsqd):
    nsqd.create_topic("f1")
    nsqd.create_channel("f1", "a")
    nsqd.create_channel("f1", "b")
    nsqd.create_topic("f2")
    only = nsqd.stats(topic="f1")["topics"]
    assert [t["topic_name"] for t in only] == ["f1"]
    assert [c["channel_name"] for c in only[0]["channels"]] == ["a", "b"]
    assert [c["channel_name"] for c in nsqd.stats("f1", "b")["topics"][0]["channels"]] == ["b"]
    missing = nsqd.stats(topic="missing")
    assert missing["topics"] is None and missing["producers"] is None  # nsqd: null, not []
    lean = nsqd.http_json("GET", "/stats", {"format": "json", "include_clients": "false",
                                            "include_mem": "false"})
    assert "memory" not in lean
    assert all(c["clients"] is None for t in lean["topics"] for c in t["channels"])
    assert "memory" in nsqd.stats()


def test_stats_producers(nsqd):
    assert nsqd.stats()["producers"] is None  # no TCP publisher yet: nsqd says null
    producer = RawNSQ(nsqd)
    producer.pub("p1", b"a")
    producer.pub("p2", b"b")
    producer.pub("p2", b"c")
    (entry,) = nsqd.stats(topic="p2")["producers"]
    assert entry["pub_counts"] == [{"topic": "p2", "count": 2}]  # narrowed to the filter
    (entry,) = nsqd.stats()["producers"]
    # nsqd v1.3.0 reports one topic per producer (its loop breaks after the first)
    assert len(entry["pub_counts"]) == 1
    assert entry["pub_counts"][0] in ({"topic": "p1", "count": 1}, {"topic": "p2", "count": 2})
    assert nsqd.stats(topic="missing")["producers"] is None
    lean = nsqd.http_json("GET", "/stats", {"format": "json", "include_clients": "false"})
    assert lean["producers"] is None


def test_stats_text(nsqd):
    nsqd.create_topic("texty")
    status, body = nsqd.http("GET", "/stats")
    assert status == 200
    text = body.decode()
    assert "Health: OK" in text and "[texty" in text


def test_config_get(nsqd_factory):
    nsqd = nsqd_factory(queue_scan_selection_count=7)  # --queue-scan-selection-count
    assert nsqd.http_json("GET", "/config/queue_scan_selection_count") == 7
    assert nsqd.http_json("GET", "/config/max_msg_size") == 1048576
    assert nsqd.http_json("GET", "/config/msg_timeout") == 60_000_000_000  # a Go duration
    assert nsqd.http_json("GET", "/config/nsqlookupd_tcp_addresses") == []
    assert error(nsqd, "GET", "/config/no_such_option") == (400, "INVALID_OPTION")


def test_config_put_lookupd_addresses(nsqd, nsqlookupd):
    addresses = json.dumps([nsqlookupd.tcp_address])
    assert nsqd.http("PUT", "/config/nsqlookupd_tcp_addresses", body=addresses)[0] == 200
    assert nsqd.http_json("GET", "/config/nsqlookupd_tcp_addresses") == [nsqlookupd.tcp_address]
    nsqd.create_topic("configured")
    assert nsqlookupd.wait_for_producer(nsqd, topic="configured", timeout=5)
    assert error(nsqd, "PUT", "/config/nsqlookupd_tcp_addresses", body="nope") == \
        (400, "INVALID_VALUE")
    assert error(nsqd, "PUT", "/config/max_msg_size", body="5") == (400, "INVALID_OPTION")
    assert error(nsqd, "PUT", "/config/log_level", body="") == (413, "INVALID_VALUE")


def test_pub_and_mpub_bodies_are_raw_whatever_they_look_like(nsqd):
    """nsqd reads bodies raw; a length prefix holding '&' (38) or a form-like body must not be parsed."""
    nsqd.mpub("raw_bodies", [b"x" * 38, b"y" * 38])
    status, body = nsqd.http("POST", "/pub", params={"topic": "raw_bodies"}, body=b"a=1&b=%zz")
    assert status == 200, body
    assert nsqd.topic_stats("raw_bodies")["message_count"] == 3
