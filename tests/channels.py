"""Shared by the test folders: a durable channel filled with distinct bodies, and what it holds
read back (with nsq-tail, in a subprocess whose environment names no nsqd)."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from polling import tool, wait_for

TOOL_ENV_KEYS = ("NSQD_TCP_ADDRESS", "NSQLOOKUPD_HTTP_ADDRESS", "NSQ_AUTH_SECRET")


def tool_env() -> dict[str, str]:
    """This process's environment without the variables the tools read addresses from."""
    env = dict(os.environ)
    for key in TOOL_ENV_KEYS:
        env.pop(key, None)
    return env


def queue_messages(nsqd: Any, topic: str, total: int, channel: str = "c") -> set[bytes]:
    """Create ``topic`` with a durable ``channel`` and publish ``<topic>-<n>`` for n < total."""
    nsqd.create_topic(topic)
    nsqd.create_channel(topic, channel)
    bodies = [b"%s-%d" % (topic.encode(), i) for i in range(total)]
    for start in range(0, total, 5000):
        nsqd.mpub(topic, bodies[start:start + 5000])
    return set(bodies)


def consume_channel(nsqd: Any, topic: str, channel: str = "c",
                    count: int | None = None) -> list[bytes]:
    """The messages queued on a channel nobody consumes (all of them: ``count`` defaults to its
    depth once nothing is in flight), read with nsq-tail -n and FINed."""
    if count is None:
        assert wait_for(lambda: nsqd.channel_stats(topic, channel)["in_flight_count"] == 0)
        count = nsqd.channel_stats(topic, channel)["depth"]
    if count == 0:
        return []
    result = subprocess.run([tool("nsq-tail"), "--topic", topic, "--channel", channel, "-n",
                             str(count), "--nsqd-tcp-address", nsqd.tcp_address],
                            capture_output=True, timeout=30, env=tool_env())
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()
