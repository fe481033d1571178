"""nsq-pub and nsq-tail as real processes against the nsqd fixture (valid against a real nsqd)."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import signal
import subprocess
import sys
import time


from polling import tool, wait_for


def test_round_trip_100000_records_exactly_once(nsqd, run_tool):
    nsqd.create_topic("seq")
    nsqd.create_channel("seq", "c")
    data = b"".join(b"%d\n" % i for i in range(1, 100_001))
    published = run_tool([tool("nsq-pub"), "--topic", "seq", "--nsqd-tcp-address", nsqd.tcp_address],
                         input=data)
    assert published.returncode == 0, published.stderr
    assert published.stderr == b""
    assert nsqd.topic_stats("seq")["message_count"] == 100_000
    tailed = run_tool([tool("nsq-tail"), "--topic", "seq", "--channel", "c", "-n", "100000",
                       "--nsqd-tcp-address", nsqd.tcp_address])
    assert tailed.returncode == 0, tailed.stderr
    lines = tailed.stdout.splitlines()
    assert len(lines) == 100_000
    assert sorted(lines, key=int) == [b"%d" % i for i in range(1, 100_001)]
    assert nsqd.channel_stats("seq", "c")["depth"] == 0


def test_binary_null_delimited_round_trip(nsqd, run_tool):
    rng = random.Random(7)
    records = [bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 300))) for _ in range(500)]
    records.append(b"line\nbreaks\r\ninside")
    published = run_tool([tool("nsq-pub"), "--topic", "bin", "-0", "--nsqd-tcp-address",
                          nsqd.tcp_address], input=b"\0".join(records))  # no trailing NUL
    assert published.returncode == 0, published.stderr
    tailed = run_tool([tool("nsq-tail"), "--topic", "bin", "--channel", "c", "-n", str(len(records)),
                       "--format", "json", "--nsqd-tcp-address", nsqd.tcp_address])
    assert tailed.returncode == 0, tailed.stderr
    bodies = []
    for line in tailed.stdout.splitlines():
        item = json.loads(line)
        bodies.append(item["body"].encode() if "body" in item else base64.b64decode(item["body_base64"]))
    assert bodies == records


def test_tail_into_head_exits_quietly_with_zero(nsqd_factory, run_tool):
    # nsqd delivers in publish order only while every message is in its memory queues: beyond
    # mem_queue_size (10,000 by default) it spills to disk and takes from memory and disk at random
    nsqd = nsqd_factory(mem_queue_size=20_000)
    nsqd.create_topic("h")
    nsqd.create_channel("h", "c")
    for start in range(0, 20_000, 2000):
        nsqd.mpub("h", [b"%d" % i for i in range(start, start + 2000)])
    command = (f"'{tool('nsq-tail')}' --topic h --channel c --nsqd-tcp-address {nsqd.tcp_address} "
               "| head -3; echo \"status=${PIPESTATUS[0]}\" >&2")
    result = subprocess.run(["bash", "-c", command], capture_output=True, timeout=30)
    shown = result.stdout.splitlines()  # nsqd does not promise order (a real one spills to disk)
    assert len(set(shown)) == 3 and all(0 <= int(line) < 20_000 for line in shown), shown
    assert result.stderr == b"status=0\n", result.stderr
    assert wait_for(lambda: nsqd.channel_stats("h", "c")["in_flight_count"] == 0)
    channel = nsqd.channel_stats("h", "c")
    # FINed: every line written into the pipe, the 3 shown and more (tests/cli/test_tail_pipe.py);
    # what was not written yet stays queued
    assert 0 < channel["depth"] <= 20_000 - 3


def test_sigterm_on_a_durable_channel_loses_nothing(nsqd, run_tool, tmp_path):
    total = 30_000
    nsqd.create_topic("d")
    nsqd.create_channel("d", "c")
    for start in range(0, total, 3000):
        nsqd.mpub("d", [b"%d" % i for i in range(start, start + 3000)])
    out_path = tmp_path / "out"
    with open(out_path, "wb") as out:
        process = subprocess.Popen(
            [tool("nsq-tail"), "--topic", "d", "--channel", "c", "--max-in-flight", "50",
             "--nsqd-tcp-address", nsqd.tcp_address], stdout=out, stderr=subprocess.PIPE)
        assert wait_for(lambda: out_path.stat().st_size > 1000)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    printed = out_path.read_bytes().splitlines()
    assert len(printed) == len(set(printed)) and 0 < len(printed) < total
    assert wait_for(lambda: nsqd.channel_stats("d", "c")["in_flight_count"] == 0)
    assert nsqd.channel_stats("d", "c")["depth"] == total - len(printed)
    rest = run_tool([tool("nsq-tail"), "--topic", "d", "--channel", "c", "-n",
                     str(total - len(printed)), "--nsqd-tcp-address", nsqd.tcp_address])
    assert rest.returncode == 0, rest.stderr
    seen = set(printed) | set(rest.stdout.splitlines())
    assert seen == {b"%d" % i for i in range(total)}


def test_nsqd_stopped_mid_publish_exact_unacknowledged_count(nsqd, tmp_path):
    failed = tmp_path / "failed"
    process = subprocess.Popen(
        [tool("nsq-pub"), "--topic", "s", "--retry-timeout", "500ms", "--failed-file", str(failed),
         "--nsqd-tcp-address", nsqd.tcp_address],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    process.stdin.write(b"".join(b"a%d\n" % i for i in range(1000)))
    process.stdin.flush()
    assert wait_for(lambda: (nsqd.topic_stats("s") or {}).get("message_count") == 1000)
    time.sleep(0.1)  # nsqd's OK answers reach nsq-pub
    nsqd.stop()
    try:
        process.stdin.write(b"".join(b"b%d\n" % i for i in range(250)))
        process.stdin.close()
        process.wait(timeout=20)
        stderr = process.stderr.read()
        process.stderr.close()
    finally:
        nsqd.start()
    assert process.returncode == 3, stderr
    assert b"250 of 1250 records were not acknowledged" in stderr, stderr
    assert failed.read_bytes() == b"".join(b"b%d\n" % i for i in range(250))
    assert b"Traceback" not in stderr


def test_pub_exits_130_on_sigint_after_publishing_what_it_read(nsqd):
    process = subprocess.Popen(
        [tool("nsq-pub"), "--topic", "i", "--nsqd-tcp-address", nsqd.tcp_address],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    process.stdin.write(b"x\ny\n")
    process.stdin.flush()
    assert wait_for(lambda: (nsqd.topic_stats("i") or {}).get("message_count") == 2)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=10)  # with stdin still open: the signal, not an EOF, ends it
    stderr = process.stderr.read()
    process.stdin.close()
    process.stderr.close()
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr


def test_umbrella_mounts_the_same_commands(nsqd, run_tool):
    result = run_tool([sys.executable, "-m", "nsqcli", "pub", "--topic", "u", "-m", "via umbrella",
                       "--nsqd-tcp-address", nsqd.tcp_address])
    assert result.returncode == 0, result.stderr
    tailed = run_tool([tool("nsqcli"), "tail", "--topic", "u", "-n", "1", "--nsqd-tcp-address",
                       nsqd.tcp_address])
    assert tailed.stdout == b"via umbrella\n", tailed.stderr
    helped = run_tool([tool("nsqcli"), "--help"])
    assert all(re.search(rb"\b%s\b" % name, helped.stdout)
               for name in (b"tail", b"pub", b"to-file", b"replay", b"dev-server"))


def _env():
    env = dict(os.environ)
    for key in ("NSQD_TCP_ADDRESS", "NSQLOOKUPD_HTTP_ADDRESS", "NSQ_AUTH_SECRET"):
        env.pop(key, None)
    return env


def test_small_input_is_published_without_the_event_loop(nsqd, run_tool):
    result = run_tool([sys.executable, "-X", "importtime", tool("nsq-pub"), "--topic", "q",
                       "--nsqd-tcp-address", nsqd.tcp_address], input=b"hello\nworld")
    assert result.returncode == 0, result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.decode().splitlines()
                if line.startswith("import time:")}
    assert "nsqcli.pub.quick" in imported
    assert "asyncio" not in imported and "tornado" not in imported
    assert nsqd.topic_stats("q")["message_count"] == 2


def test_quick_path_hands_over_to_the_engine_on_an_nsqd_error(nsqd_factory, run_tool):
    nsqd = nsqd_factory(max_msg_size=5)
    result = run_tool([tool("nsq-pub"), "--topic", "q", "-m", "ok", "-m", "too long",
                       "--nsqd-tcp-address", nsqd.tcp_address])
    assert result.returncode == 3, result.stderr
    assert b"record 2 is 8 bytes, larger than nsqd's max-msg-size 5" in result.stderr
    assert nsqd.topic_stats("q")["message_count"] == 1


def test_second_signal_exits_at_once(nsqd):
    process = subprocess.Popen(
        [tool("nsq-pub"), "--topic", "w", "--retry-timeout", "60s", "--nsqd-tcp-address",
         nsqd.tcp_address], stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    process.stdin.write(b"first\n")
    process.stdin.flush()
    assert wait_for(lambda: (nsqd.topic_stats("w") or {}).get("message_count") == 1)
    nsqd.stop()
    try:
        process.stdin.write(b"stuck\n")  # cannot be acknowledged while nsqd is down
        process.stdin.flush()
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)  # graceful: would wait up to the retry timeout
        time.sleep(0.3)
        assert process.poll() is None
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=5)
        assert time.monotonic() - started < 2
    finally:
        nsqd.start()
        process.stdin.close()
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.returncode == 130
    assert b"exiting at once" in stderr
