"""nsq-tail through CliRunner against the nsqd fixture."""

from __future__ import annotations

import base64
import json
import re

from nsqcli.tail.command import command as tail
from nsqcli.tail.command import default_channel


from polling import wait_for


def settled(nsqd, topic, channel):
    """Channel stats once nothing is in flight any more (requeues have landed)."""
    assert wait_for(lambda: nsqd.channel_stats(topic, channel)["in_flight_count"] == 0)
    return nsqd.channel_stats(topic, channel)


def test_prints_exactly_n_and_fins_them(invoke, nsqd):
    nsqd.create_topic("t")
    nsqd.create_channel("t", "c")
    nsqd.mpub("t", [b"m%d" % i for i in range(10)])
    result = invoke(tail, ["--topic", "t", "--channel", "c", "-n", "4",
                           "--nsqd-tcp-address", nsqd.tcp_address])
    assert result.exit_code == 0, result
    assert result.stdout_bytes == b"m0\nm1\nm2\nm3\n"
    assert result.stderr == ""
    channel = settled(nsqd, "t", "c")
    assert channel["depth"] == 6  # the 6 not printed are still there


def test_n_is_a_total_across_topics(invoke, nsqd):
    for topic in ("a", "b"):
        nsqd.create_topic(topic)
        nsqd.create_channel(topic, "c")
        nsqd.mpub(topic, [b"%s%d" % (topic.encode(), i) for i in range(5)])
    result = invoke(tail, ["--topic", "a", "--topic", "b", "--channel", "c", "-n", "7",
                           "--nsqd-tcp-address", nsqd.tcp_address])
    assert result.exit_code == 0, result
    lines = result.stdout_bytes.splitlines()
    assert len(lines) == 7 and len(set(lines)) == 7
    left = settled(nsqd, "a", "c")["depth"] + settled(nsqd, "b", "c")["depth"]
    assert left == 3


def test_print_topic(invoke, nsqd):
    nsqd.pub("t", b"hello")
    result = invoke(tail, ["--topic", "t", "--channel", "c", "-n", "1", "--print-topic",
                           "--nsqd-tcp-address", nsqd.tcp_address])
    assert result.exit_code == 0, result
    assert result.stdout_bytes == b"t | hello\n"


def test_json_format_text_and_binary(invoke, nsqd):
    nsqd.create_topic("t")
    nsqd.create_channel("t", "c")
    nsqd.mpub("t", ["héllo\nworld".encode(), b"\xff\x00\xfe"])
    result = invoke(tail, ["--topic", "t", "--channel", "c", "-n", "2", "--format", "json",
                           "--nsqd-tcp-address", nsqd.tcp_address])
    assert result.exit_code == 0, result
    first, second = [json.loads(line) for line in result.stdout_bytes.splitlines()]
    assert first["body"] == "héllo\nworld" and first["topic"] == "t"
    assert first["attempts"] == 1 and len(first["id"]) == 16
    assert isinstance(first["timestamp"], int) and first["timestamp"] > 1e18
    assert "body" not in second and base64.b64decode(second["body_base64"]) == b"\xff\x00\xfe"


def test_default_channel_is_random_and_ephemeral():
    names = {default_channel() for _ in range(20)}
    assert all(re.fullmatch(r"tail\d{6}#ephemeral", name) for name in names)
    assert len(names) > 1


def test_default_channel_used_when_none_given(invoke, nsqd):
    nsqd.pub("t", b"x")
    result = invoke(tail, ["--topic", "t", "-n", "1", "--nsqd-tcp-address", nsqd.tcp_address])
    assert result.exit_code == 0, result
    assert result.stdout_bytes == b"x\n"


def test_lookupd_discovery(invoke, nsqd_with_lookupd):
    nsqd, lookupd = nsqd_with_lookupd
    nsqd.pub("t", b"found")
    assert wait_for(lambda: lookupd.http("GET", "/lookup", {"topic": "t"})[0] == 200)
    result = invoke(tail, ["--topic", "t", "--channel", "c", "-n", "1",
                           "--lookupd-http-address", lookupd.http_address])
    assert result.exit_code == 0, result
    assert result.stdout_bytes == b"found\n"


def test_topic_required_and_validated(invoke):
    assert invoke(tail, []).exit_code == 2
    bad = invoke(tail, ["--topic", "bad topic"])
    assert bad.exit_code == 2 and "invalid topic name" in bad.stderr, bad


def test_bad_channel_is_a_usage_error(invoke):
    result = invoke(tail, ["--topic", "t", "--channel", "x" * 70])
    assert result.exit_code == 2, result
    assert "invalid channel name" in result.stderr


def test_unknown_consumer_opt_lists_valid_ones(invoke):
    result = invoke(tail, ["--topic", "t", "--consumer-opt", "nope=1"])
    assert result.exit_code == 2, result
    assert "unknown consumer option 'nope'" in result.stderr and "max_in_flight" in result.stderr


def test_consumer_opt_values_are_validated(invoke):
    result = invoke(tail, ["--topic", "t", "--consumer-opt", "heartbeat_interval=soon"])
    assert result.exit_code == 2, result
    assert "heartbeat_interval" in result.stderr


def test_consumer_opts_reach_the_connection(invoke, nsqd):
    nsqd.pub("t", b"x")
    result = invoke(tail, ["--topic", "t", "-n", "1", "--nsqd-tcp-address", nsqd.tcp_address,
                           "--consumer-opt", "heartbeat_interval,2s",
                           "--consumer-opt", "max_in_flight=1", "--consumer-opt", "snappy"])
    assert result.exit_code == 0, result
    assert result.stdout_bytes == b"x\n"


def test_max_in_flight_must_be_positive(invoke):
    result = invoke(tail, ["--topic", "t", "--max-in-flight", "0"])
    assert result.exit_code == 2, result
