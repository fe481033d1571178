"""A user who pressed Ctrl-C needs to know how far it got: nsq-pub and nsq-replay print
"N of M records acknowledged" after a signal without -v (issue 13, item 9; the quick path:
tests/faults/test_signals.py)."""

from __future__ import annotations

import re
import signal
import subprocess

from fault_helpers import kill_quietly, spawn, stop_with, tool, wait_for


def test_interrupted_nsq_pub_prints_the_count_without_v(nsqd):
    nsqd.create_topic("count")
    process = spawn([tool("nsq-pub"), "--topic", "count", "--nsqd-tcp-address",
                     nsqd.tcp_address], stdin=subprocess.PIPE)
    try:
        process.stdin.write(b"".join(b"c-%d\n" % i for i in range(1000)))
        process.stdin.flush()  # left open: the signal, not EOF, ends the run
        assert wait_for(lambda: (nsqd.topic_stats("count") or {}).get("message_count") == 1000)
        _, stderr = stop_with(process, signal.SIGINT)
    finally:
        kill_quietly(process)
    assert process.returncode == 130, stderr
    assert stderr == b"nsq-pub: 1000 of 1000 records acknowledged\n"


def test_interrupted_nsq_replay_prints_the_count_without_v(nsqd, tmp_path):
    source = tmp_path / "in.log"
    source.write_bytes(b"".join(b"r-%d\n" % i for i in range(20_000)))
    process = spawn([tool("nsq-replay"), str(source), "--topic", "replayed", "--rate", "2000",
                     "--nsqd-tcp-address", nsqd.tcp_address])
    try:
        assert wait_for(lambda: (nsqd.topic_stats("replayed") or {}).get("message_count", 0) > 100)
        _, stderr = stop_with(process, signal.SIGINT)
    finally:
        kill_quietly(process)
    assert process.returncode == 130, stderr
    match = re.fullmatch(rb"nsq-replay: (\d+) of (\d+) records acknowledged\n", stderr)
    assert match, stderr
    assert int(match.group(1)) == int(match.group(2)) == nsqd.topic_stats("replayed")["message_count"]
