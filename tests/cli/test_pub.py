"""nsq-pub through CliRunner against the nsqd fixture: every flag and error path."""

from __future__ import annotations

import os
import re
import time

import pytest

from nsqcli.pub.command import command as pub


def count(nsqd, topic):
    stats = nsqd.topic_stats(topic)
    return 0 if stats is None else stats["message_count"]


def test_stdin_records_are_published_in_order(invoke, nsqd, tail_bodies):
    result = invoke(pub, ["--topic", "t", "--nsqd-tcp-address", nsqd.tcp_address],
                    input=b"one\ntwo\nthree\n")
    assert result.exit_code == 0, result
    assert result.stdout == "" and result.stderr == ""
    assert tail_bodies(nsqd, "t", 3) == [b"one", b"two", b"three"]


def test_final_record_without_delimiter_is_published_whole(invoke, nsqd, tail_bodies):
    result = invoke(pub, ["--topic", "t", "--nsqd-tcp-address", nsqd.tcp_address],
                    input=b"a\nlast")
    assert result.exit_code == 0, result
    assert tail_bodies(nsqd, "t", 2) == [b"a", b"last"]


def test_empty_records_are_skipped(invoke, nsqd, tail_bodies):
    result = invoke(pub, ["--topic", "t", "--nsqd-tcp-address", nsqd.tcp_address],
                    input=b"\n\na\n\nb\n\n")
    assert result.exit_code == 0, result
    assert count(nsqd, "t") == 2
    assert tail_bodies(nsqd, "t", 2) == [b"a", b"b"]


def test_multi_byte_delimiter_with_escapes(invoke, nsqd, tail_bodies):
    result = invoke(pub, ["--topic", "t", "--delimiter", r"\x1e\n",
                          "--nsqd-tcp-address", nsqd.tcp_address],
                    input=b"line 1\nstill 1\x1e\nrecord 2\x1e\n")
    assert result.exit_code == 0, result
    assert tail_bodies(nsqd, "t", 2) == [b"line 1\nstill 1", b"record 2"]


def test_null_delimited_binary_records(invoke, nsqd, tail_bodies):
    records = [bytes(range(1, 256)), b"\xff\xfe\n\r", b"text"]
    result = invoke(pub, ["--topic", "t", "-0", "--nsqd-tcp-address", nsqd.tcp_address],
                    input=b"\0".join(records) + b"\0")
    assert result.exit_code == 0, result
    assert tail_bodies(nsqd, "t", 3) == records


def test_null_and_delimiter_together_is_a_usage_error(invoke):
    result = invoke(pub, ["--topic", "t", "-0", "--delimiter", ","])
    assert result.exit_code == 2, result
    assert "-0/--null" in result.stderr and result.stdout == ""


def test_empty_delimiter_is_a_usage_error(invoke):
    result = invoke(pub, ["--topic", "t", "--delimiter", ""])
    assert result.exit_code == 2, result
    assert "delimiter" in result.stderr


def test_messages_from_the_command_line(invoke, nsqd, tail_bodies):
    result = invoke(pub, ["--topic", "t", "-m", "hello", "--message", "wörld",
                          "--nsqd-tcp-address", nsqd.tcp_address])
    assert result.exit_code == 0, result
    assert tail_bodies(nsqd, "t", 2) == [b"hello", "wörld".encode()]


def test_message_and_files_together_is_a_usage_error(invoke, tmp_path):
    (tmp_path / "f").write_bytes(b"x\n")
    result = invoke(pub, ["--topic", "t", "-m", "x", str(tmp_path / "f")])
    assert result.exit_code == 2, result
    assert "--message" in result.stderr


def test_files_and_dash_for_stdin(invoke, nsqd, tail_bodies, tmp_path):
    first = tmp_path / "first.txt"
    first.write_bytes(b"f1\nf2")  # no final newline: still a whole record
    result = invoke(pub, ["--topic", "t", "--nsqd-tcp-address", nsqd.tcp_address, first, "-"],
                    input=b"s1\n")
    assert result.exit_code == 0, result
    assert tail_bodies(nsqd, "t", 3) == [b"f1", b"f2", b"s1"]


def test_missing_file_is_a_usage_error(invoke, nsqd, tmp_path):
    missing = tmp_path / "nope.txt"
    result = invoke(pub, ["--topic", "t", "--nsqd-tcp-address", nsqd.tcp_address, missing])
    assert result.exit_code == 2, result
    assert str(missing) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc")
def test_unreadable_input_is_reported_after_publishing_what_was_read(invoke, nsqd, tmp_path):
    good = tmp_path / "good.txt"
    good.write_bytes(b"a\nb\n")
    # reading /proc/self/mem at offset 0 fails with EIO: an input that breaks mid-way
    result = invoke(pub, ["--topic", "t", "--nsqd-tcp-address", nsqd.tcp_address, good,
                          "/proc/self/mem"])
    assert result.exit_code == 1, result
    assert "/proc/self/mem" in result.stderr and "Traceback" not in result.stderr
    assert count(nsqd, "t") == 2


def test_bad_topic_is_a_usage_error(invoke):
    result = invoke(pub, ["--topic", "no spaces!", "-m", "x"])
    assert result.exit_code == 2, result
    assert "invalid topic name" in result.stderr


def test_unreachable_nsqd_names_the_address(invoke):
    result = invoke(pub, ["--topic", "t", "-m", "x", "--nsqd-tcp-address", "127.0.0.1:1"])
    assert result.exit_code == 1, result
    assert "127.0.0.1:1" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_env_var_addresses(invoke, nsqd):
    result = invoke(pub, ["--topic", "t", "-m", "x"], env={"NSQD_TCP_ADDRESS": nsqd.tcp_address})
    assert result.exit_code == 0, result
    assert count(nsqd, "t") == 1


def test_oversized_record_is_an_error_naming_the_record(invoke, nsqd_factory):
    nsqd = nsqd_factory(max_msg_size=100)
    data = b"small\n" + b"x" * 150 + b"\nafter\n"
    result = invoke(pub, ["--topic", "t", "--nsqd-tcp-address", nsqd.tcp_address], input=data)
    assert result.exit_code == 3, result  # not acknowledged, as the line below says
    assert "record 2 is 150 bytes" in result.stderr
    assert "2 of 3 records were not acknowledged by nsqd" in result.stderr
    assert "--skip-oversized" in result.stderr


def test_skip_oversized_counts_and_continues(invoke, nsqd_factory):
    nsqd = nsqd_factory(max_msg_size=100)
    data = b"small\n" + b"x" * 150 + b"\nafter\n"
    result = invoke(pub, ["--topic", "t", "--skip-oversized", "--nsqd-tcp-address",
                          nsqd.tcp_address], input=data)
    assert result.exit_code == 0, result
    assert "1 oversized record(s) skipped" in result.stderr
    assert count(nsqd, "t") == 2


def test_producer_opt_max_msg_size_checks_before_sending(invoke, nsqd):
    result = invoke(pub, ["--topic", "t", "--producer-opt", "max_msg_size=3",
                          "--nsqd-tcp-address", nsqd.tcp_address], input=b"ok\ntoo long\n")
    assert result.exit_code == 3, result
    assert "record 2 is 8 bytes, larger than nsqd's max-msg-size 3" in result.stderr
    assert count(nsqd, "t") == 1


def test_unknown_producer_opt_lists_valid_ones(invoke):
    result = invoke(pub, ["--topic", "t", "-m", "x", "--producer-opt", "bogus=1"])
    assert result.exit_code == 2, result
    assert "unknown producer option 'bogus'" in result.stderr
    assert "max_msg_size" in result.stderr and "heartbeat_interval" in result.stderr


def test_defer_publishes_deferred_messages(invoke, nsqd):
    nsqd.create_topic("t")
    nsqd.create_channel("t", "c")
    result = invoke(pub, ["--topic", "t", "--defer", "1m", "--nsqd-tcp-address", nsqd.tcp_address],
                    input=b"a\nb\n")
    assert result.exit_code == 0, result
    channel = nsqd.channel_stats("t", "c")
    assert channel["deferred_count"] == 2 and channel["depth"] == 0


def test_rate_limits(invoke, nsqd):
    started = time.monotonic()
    result = invoke(pub, ["--topic", "t", "--rate", "40", "--nsqd-tcp-address", nsqd.tcp_address],
                    input=b"".join(b"%d\n" % i for i in range(12)))
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result
    assert count(nsqd, "t") == 12
    assert elapsed >= 0.25  # 11 records after the first at 40/s


def test_round_robin_spreads_over_nsqds(invoke, nsqd_factory):
    a, b = nsqd_factory(), nsqd_factory()
    data = b"".join(b"%d\n" % i for i in range(2000))
    result = invoke(pub, ["--topic", "t", "--batch-size", "50", "--nsqd-tcp-address", a.tcp_address,
                          "--nsqd-tcp-address", b.tcp_address], input=data)
    assert result.exit_code == 0, result
    assert count(a, "t") + count(b, "t") == 2000
    assert count(a, "t") > 0 and count(b, "t") > 0


def test_fan_out_sends_every_record_to_every_nsqd(invoke, nsqd_factory):
    a, b = nsqd_factory(), nsqd_factory()
    result = invoke(pub, ["--topic", "t", "--mode", "fan-out",
                          "--nsqd-tcp-address", f"{a.tcp_address},{b.tcp_address}"],
                    input=b"1\n2\n3\n")
    assert result.exit_code == 0, result
    assert count(a, "t") == count(b, "t") == 3


def test_progress_line_on_request(invoke, nsqd):
    result = invoke(pub, ["--topic", "t", "--progress", "--nsqd-tcp-address", nsqd.tcp_address],
                    input=b"1\n2\n")
    assert result.exit_code == 0, result
    assert re.search(r"2 records, 2 acknowledged", result.stderr)


def test_quiet_and_verbose(invoke, nsqd):
    loud = invoke(pub, ["--topic", "t", "-v", "-m", "x", "--nsqd-tcp-address", nsqd.tcp_address])
    assert loud.exit_code == 0 and "1 of 1 records acknowledged" in loud.stderr, loud
    both = invoke(pub, ["--topic", "t", "-q", "-v", "-m", "x"])
    assert both.exit_code == 2, both


def test_auth_secret_is_never_echoed(invoke):
    secret = "s3cr3t-value"
    for args, env in ((["--auth-secret", secret], {}), ([], {"NSQ_AUTH_SECRET": secret})):
        result = invoke(pub, ["--topic", "t", "-vv", "-m", "x", "--nsqd-tcp-address", "127.0.0.1:1",
                              *args], env=env)
        assert result.exit_code == 1, result
        assert secret not in result.stderr and secret not in result.stdout


def test_auth_secret_file_and_flag_conflict(invoke, tmp_path):
    path = tmp_path / "secret"
    path.write_text("abc\n")
    result = invoke(pub, ["--topic", "t", "-m", "x", "--auth-secret", "x", "--auth-secret-file", path])
    assert result.exit_code == 2, result
    assert "abc" not in result.stderr


def test_tls_insecure_warns_and_plain_nsqd_is_refused(invoke, nsqd):
    result = invoke(pub, ["--topic", "t", "-m", "x", "--tls-insecure-skip-verify",
                          "--nsqd-tcp-address", nsqd.tcp_address])
    assert "NOT verified" in result.stderr
    assert result.exit_code == 1, result
    assert "TLS" in result.stderr


def test_snappy_and_deflate_publish(invoke, nsqd, tail_bodies):
    for flag in ("--snappy", "--deflate"):
        result = invoke(pub, ["--topic", "t", flag, "-m", flag, "--nsqd-tcp-address",
                              nsqd.tcp_address])
        assert result.exit_code == 0, result
    assert tail_bodies(nsqd, "t", 2) == [b"--snappy", b"--deflate"]


def test_version(invoke):
    result = invoke(pub, ["--version"])
    assert result.exit_code == 0 and re.search(r"\d+\.\d+\.\d+", result.stdout), result


@pytest.mark.parametrize("value", ["-1", "abc", "inf", "nan"])  # 0 is to_nsq's "no limit"
def test_bad_rate(invoke, value):
    result = invoke(pub, ["--topic", "t", "--rate", value, "-m", "x"])
    assert result.exit_code == 2, result


def test_lookupd_only_publishes_to_the_nodes_it_lists(invoke, nsqd_with_lookupd):
    nsqd, lookupd = nsqd_with_lookupd
    result = invoke(pub, ["--topic", "t", "-m", "found", "--lookupd-http-address",
                          lookupd.http_address])
    assert result.exit_code == 0, result
    assert count(nsqd, "t") == 1


def test_unreachable_lookupd_is_a_one_line_error(invoke):
    result = invoke(pub, ["--topic", "t", "-m", "x", "--lookupd-http-address", "127.0.0.1:1"])
    assert result.exit_code == 1, result
    assert "127.0.0.1:1" in result.stderr and "Traceback" not in result.stderr


def test_failed_file_is_empty_when_everything_was_acknowledged(invoke, nsqd, tmp_path):
    failed = tmp_path / "failed"
    failed.write_bytes(b"stale from an earlier run\n")
    result = invoke(pub, ["--topic", "t", "--failed-file", failed, "--nsqd-tcp-address",
                          nsqd.tcp_address], input=b"a\nb\n")
    assert result.exit_code == 0, result
    assert failed.read_bytes() == b""


def test_records_larger_than_the_default_limit_when_nsqd_allows_them(invoke, nsqd_factory):
    nsqd = nsqd_factory(max_msg_size=3 * 1024 * 1024)
    big = b"z" * (1536 * 1024)
    result = invoke(pub, ["--topic", "t", "--nsqd-tcp-address", nsqd.tcp_address],
                    input=b"small\n" + big + b"\n")
    assert result.exit_code == 0, result
    assert count(nsqd, "t") == 2


def test_lookupd_mode_learns_nsqds_limits_over_http(invoke, nsqd_factory, nsqlookupd):
    nsqd = nsqd_factory(max_msg_size=100, lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    nsqlookupd.wait_for_producer(nsqd)
    data = b"ok\n" + b"x" * 150 + b"\n"
    result = invoke(pub, ["--topic", "t", "--lookupd-http-address", nsqlookupd.http_address],
                    input=data)
    assert result.exit_code == 3, result
    assert "record 2 is 150 bytes, larger than nsqd's max-msg-size 100" in result.stderr
    assert count(nsqd, "t") == 1
    assert "re-batching" not in result.stderr  # known before sending, not learned from an error


def test_parse_nodes_shapes():
    import json as _json

    from nsqcli.cli.lookupd_nodes import Node, parse_nodes

    v1 = {"producers": [{"broadcast_address": "h", "tcp_port": 4150, "http_port": 4151},
                        {"broadcast_address": "::1", "tcp_port": 1, "http_port": 2}]}
    assert parse_nodes(_json.dumps(v1).encode()) == [Node("h:4150", "h:4151"), Node("[::1]:1", "[::1]:2")]
    wrapped = {"status_code": 200, "status_txt": "OK", "data": v1}
    assert len(parse_nodes(_json.dumps(wrapped).encode())) == 2
    with pytest.raises(Exception):
        parse_nodes(b"not json")
    with pytest.raises(Exception):
        parse_nodes(b'{"producers": [{"tcp_port": 1}]}')
