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


# A real nsqd moves messages between queues on goroutines of its own: a topic's messagePump
# copies published messages to its channels asynchronously (a channel's depth lags the topic's),
# a timed-out in-flight message goes back to the channel's queue a moment later, and a message a
# client's pump took from the channel's queue is in flight only a moment later. So a depth
# read once, or an in-flight count and a depth read in two /stats calls, can miss messages that
# are moving. These helpers wait until a channel is settled instead.


#: msg_timeout for tests that stop a consumer, then read its channel back: nsqd v1.3.0 may
#: deliver one more message after CLOSE_WAIT (a race in its message pump). During the drain the
#: handler gets it; while close_gracefully() still waits for the socket to take our last writes,
#: it gets REQ <id> 0; but once our side of the connection is shut (the usual case when nothing
#: was left to write: no await comes before the shutdown), no answer can be sent and it stays in
#: flight until msg_timeout (60 s by default). Still needed for that last case.
CONSUMER_STOP_MSG_TIMEOUT_MS = 5000


def left_in_flight(conns: list[Any]) -> int:
    """Messages that consumer connections (closed AsyncConns) could not answer: nsqd sent them
    after our side was shut, so they stay in flight at nsqd until msg_timeout."""
    assert conns
    late = sum(conn.messages_left_in_flight for conn in conns)
    assert late <= len(conns)  # at most the one nsqd's pump held when CLS came, per connection
    return late


class ChannelSettled:
    """A :func:`polling.wait_for` predicate, true once ``channel`` is settled (at ``expected``,
    when given, with a consumer still working on it): the topic has handed every message
    published to it on to the channel (the channel must exist before the first publish: its
    message_count then catches up with the topic's), nothing is in flight or deferred, and two
    /stats answers in a row agree (a message nsqd is moving between two queues shows in
    neither). Make one per wait: it remembers the previous answer."""

    def __init__(self, nsqd: Any, topic: str, channel: str = "c",
                 expected: int | None = None) -> None:
        self.nsqd, self.topic, self.channel, self.expected = nsqd, topic, channel, expected
        self.previous: tuple | None = None
        self.last: tuple[dict, dict] | None = None

    def __call__(self) -> bool:
        topic_entry = self.nsqd.topic_stats(self.topic)
        chan = next((c for c in (topic_entry or {}).get("channels") or []
                     if c["channel_name"] == self.channel), None)
        if topic_entry is None or chan is None:  # not made yet (a consumer's SUB makes it)
            return False
        self.last = topic_entry, chan
        quiet = (topic_entry["depth"] == 0 and chan["in_flight_count"] == 0
                 and chan["deferred_count"] == 0
                 and chan["message_count"] >= topic_entry["message_count"]
                 and self.expected in (None, chan["depth"]))
        state = (chan["depth"], chan["message_count"], chan["requeue_count"],
                 chan["timeout_count"], topic_entry["message_count"]) if quiet else None
        agreed = state is not None and state == self.previous
        self.previous = state
        return agreed

    def __bool__(self) -> bool:  # `wait_for(lambda: ChannelSettled(...))` would never wait
        raise TypeError("ChannelSettled is a predicate: call it")


def settled_depth(nsqd: Any, topic: str, channel: str = "c", timeout: float = 30.0,
                  expected: int | None = None) -> int:
    """The depth of ``channel`` once it is settled (see :class:`ChannelSettled`)."""
    settled = ChannelSettled(nsqd, topic, channel, expected)
    assert wait_for(settled, timeout=timeout, interval=0.05), (
        settled.last or f"nsqd has no channel {topic!r}/{channel!r}")
    assert settled.last is not None
    return settled.last[1]["depth"]


def queue_messages(nsqd: Any, topic: str, total: int, channel: str = "c") -> set[bytes]:
    """Create ``topic`` with a durable ``channel``, publish ``<topic>-<n>`` for n < total and
    wait until the channel holds them all."""
    nsqd.create_topic(topic)
    nsqd.create_channel(topic, channel)
    bodies = [b"%s-%d" % (topic.encode(), i) for i in range(total)]
    for start in range(0, total, 5000):
        nsqd.mpub(topic, bodies[start:start + 5000])
    settled_depth(nsqd, topic, channel, expected=total)
    return set(bodies)


def consume_channel(nsqd: Any, topic: str, channel: str = "c",
                    count: int | None = None) -> list[bytes]:
    """The messages queued on a channel nobody consumes (all of them: ``count`` defaults to its
    :func:`settled_depth`), read with nsq-tail -n and FINed."""
    if count is None:
        count = settled_depth(nsqd, topic, channel)
    if count == 0:
        return []
    result = subprocess.run([tool("nsq-tail"), "--topic", topic, "--channel", channel, "-n",
                             str(count), "--nsqd-tcp-address", nsqd.tcp_address],
                            capture_output=True, timeout=30, env=tool_env())
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()
