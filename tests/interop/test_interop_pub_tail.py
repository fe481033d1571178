"""Our publisher feeds Go's consumer and Go's publisher feeds ours, through a real nsqd:
every body arrives once, byte for byte."""

from __future__ import annotations

import pytest

from interop_helpers import drained, odd_bodies, run
from polling import tool, wait_for

pytestmark = pytest.mark.real_only("Go's apps are found next to the real nsqd binary")

COUNT = 3000


def test_nsq_pub_to_go_nsq_tail(nsqd, go_app):
    nsq_tail = go_app("nsq_tail")
    bodies = odd_bodies(COUNT, "pub")
    nsqd.create_topic("interop_pub")
    nsqd.create_channel("interop_pub", "go")
    run([tool("nsq-pub"), "--topic", "interop_pub", "--nsqd-tcp-address", nsqd.tcp_address],
        stdin=b"".join(b + b"\n" for b in bodies))
    assert nsqd.topic_stats("interop_pub")["message_count"] == COUNT  # each body published once

    out = run([nsq_tail, "--topic", "interop_pub", "--channel", "go", "-n", str(COUNT),
               "--nsqd-tcp-address", nsqd.tcp_address])
    assert sorted(out.split(b"\n")) == sorted(bodies + [b""])  # b"": after the last newline


def test_go_to_nsq_to_nsq_tail(nsqd, go_app):
    to_nsq = go_app("to_nsq")
    bodies = odd_bodies(COUNT, "to")
    nsqd.create_topic("interop_to")
    nsqd.create_channel("interop_to", "ours")
    run([to_nsq, "--topic", "interop_to", "--nsqd-tcp-address", nsqd.tcp_address],
        stdin=b"".join(b + b"\n" for b in bodies), timeout=120)  # one PUB at a time
    assert nsqd.topic_stats("interop_to")["message_count"] == COUNT

    out = run([tool("nsq-tail"), "--topic", "interop_to", "--channel", "ours", "-n", str(COUNT),
               "--nsqd-tcp-address", nsqd.tcp_address])
    assert sorted(out.split(b"\n")) == sorted(bodies + [b""])
    # and ours FINed every one of them before it exited
    assert wait_for(drained(nsqd, "interop_to", "ours", COUNT)), \
        nsqd.channel_stats("interop_to", "ours")
