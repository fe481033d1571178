"""nsq-stat shows the numbers Go's nsq_stat (v1.3.0) shows for the same nsqds.

Go's binary is NSQCLI_TEST_NSQ_STAT, else the nsq_stat next to NSQCLI_TEST_NSQD, else one on
PATH; without one the test is skipped. The state compared holds still while both tools poll:
messages on disk and in memory, in flight to a client that does not answer them, one requeued
with a long delay (deferred), on two nsqds that nsq_stat sums.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nsqcli.lib.protocol import commands as cmd
from nsqcli.lib.sync_conn import SyncConn
from nsqcli.stat.command import command as stat_command
from nsqcli.testing import nsqd_binary
from polling import wait_for

FRAME_MESSAGE = 2


def go_nsq_stat() -> str | None:
    named = os.environ.get("NSQCLI_TEST_NSQ_STAT")
    if named:
        return named
    nsqd = nsqd_binary()
    if nsqd and (Path(nsqd).parent / "nsq_stat").exists():
        return str(Path(nsqd).parent / "nsq_stat")
    return shutil.which("nsq_stat")


pytestmark = pytest.mark.skipif(go_nsq_stat() is None, reason="no Go nsq_stat binary "
                                "(NSQCLI_TEST_NSQ_STAT, next to NSQCLI_TEST_NSQD, or on PATH)")


def hold(nsqd, topic: str, channel: str, count: int) -> tuple[SyncConn, list[bytes]]:
    """A consumer that takes ``count`` messages and answers none (they stay in flight)."""
    conn = SyncConn(timeout=10)
    conn.connect("127.0.0.1", nsqd.tcp_port)
    conn.send(cmd.subscribe(topic, channel))
    assert conn.read_response() == b"\x00\x00\x00\x00OK"
    conn.send(cmd.ready(count))
    ids = []
    while len(ids) < count:
        frame = conn.read_response()
        if int.from_bytes(frame[:4], "big") == FRAME_MESSAGE:
            ids.append(frame[4 + 8 + 2:4 + 8 + 2 + 16])  # after the timestamp and attempts
    conn.send(cmd.ready(0))  # no more, whatever it answers
    return conn, ids


def settled(nsqd, topic: str, channel: str, **expected: int) -> bool:
    stats = nsqd.channel_stats(topic, channel) or {}
    return all(stats.get(key) == value for key, value in expected.items())


def test_the_same_numbers_as_gos_nsq_stat(nsqd_factory, invoke):
    first, second = nsqd_factory(mem_queue_size=2), nsqd_factory(mem_queue_size=2)
    for nsqd, count in ((first, 6), (second, 3)):
        nsqd.create_topic("go_compare")
        nsqd.create_channel("go_compare", "audit")
        nsqd.mpub("go_compare", [f"m{i}" for i in range(count)])
    consumer, ids = hold(first, "go_compare", "audit", 2)
    try:
        consumer.send(cmd.requeue(ids[0], 60_000))  # deferred for a minute, counted requeued
        assert wait_for(lambda: settled(first, "go_compare", "audit", depth=4, in_flight_count=1,
                                        deferred_count=1, requeue_count=1, client_count=1))
        assert wait_for(lambda: settled(second, "go_compare", "audit", depth=3))
        addresses = [first.http_address, second.http_address]
        go = subprocess.run([go_nsq_stat(), "-topic=go_compare", "-channel=audit",
                             "-count=1", "-interval=200ms",
                             *(f"-nsqd-http-address={a}" for a in addresses)],
                            capture_output=True, text=True, timeout=60)
        assert go.returncode == 0, go.stderr
        result = invoke(stat_command, ["-topic=go_compare", "-channel=audit", "-count=2",
                                       "-interval=200ms", "--json",
                                       *(f"-nsqd-http-address={a}" for a in addresses)])
        assert result.exit_code == 0, result
    finally:
        consumer.close()
    # ingress egress | total mem disk inflt def | req t-o msgs clients
    numbers = [int(word) for word in go.stdout.splitlines()[-1].split() if word != "|"]
    theirs = dict(zip(["rate_in", "rate_out", "depth", "memory_depth", "backend_depth",
                       "in_flight", "deferred", "requeued", "timed_out", "messages", "clients"],
                      numbers))
    (row,) = json.loads(result.stdout.splitlines()[-1])["rows"]
    ours = {key: row[key] for key in theirs}
    assert ours == theirs
    assert (ours["depth"], ours["in_flight"], ours["deferred"], ours["messages"]) == (7, 1, 1, 9)
    assert ours["backend_depth"] > 0 and ours["memory_depth"] > 0
