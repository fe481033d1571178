"""What `nsq-tail | head -3` (no -n) really does, as the README and `nsq-tail --help` say: every
line written into the pipe is FINed, shown by the reader or not; only what was not written yet
is requeued."""

from __future__ import annotations

import os
import subprocess

from polling import tool, wait_for


def _finished(nsqd, topic: str, channel: str) -> int:
    stats = nsqd.channel_stats(topic, channel)
    return stats["message_count"] - stats["depth"] - stats["in_flight_count"] - stats["deferred_count"]


def test_lines_in_the_pipe_are_finished_whether_the_reader_shows_them_or_not(nsqd):
    total = 5000  # about 24 KiB of lines: all fit in a pipe that nobody reads
    nsqd.create_topic("p")
    nsqd.create_channel("p", "c")
    nsqd.mpub("p", [b"%d" % i for i in range(total)])
    read_end, write_end = os.pipe()
    process = subprocess.Popen([tool("nsq-tail"), "--topic", "p", "--channel", "c",
                                "--nsqd-tcp-address", nsqd.tcp_address],
                               stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        shown = [pipe.readline() for _ in range(3)]  # what `head -3` shows, then it stops reading
        assert wait_for(lambda: _finished(nsqd, "p", "c") == total, 30), nsqd.channel_stats("p", "c")
    # head has exited: the next write fails, and nsq-tail exits 0 requeueing what it holds
    nsqd.pub("p", b"after")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert len(shown) == 3
    assert wait_for(lambda: nsqd.channel_stats("p", "c")["in_flight_count"] == 0)
    assert _finished(nsqd, "p", "c") == total  # 3 shown, all 5000 written to the pipe FINed
    assert nsqd.channel_stats("p", "c")["depth"] == 1  # only "after", never written, stays


def test_with_n_exactly_n_are_finished(nsqd, run_tool):
    nsqd.create_topic("q")
    nsqd.create_channel("q", "c")
    nsqd.mpub("q", [b"%d" % i for i in range(5000)])
    result = run_tool([tool("nsq-tail"), "--topic", "q", "--channel", "c", "-n", "3",
                       "--nsqd-tcp-address", nsqd.tcp_address])
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 3, result.stderr
    assert wait_for(lambda: nsqd.channel_stats("q", "c")["in_flight_count"] == 0)
    assert _finished(nsqd, "q", "c") == 3
