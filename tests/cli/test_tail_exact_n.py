"""nsq-tail -n N takes exactly N messages from nsqd: RDY never lets more than what remains be
in flight, so nothing is requeued (attempts stay 1, the order is kept) -- on one nsqd, across
topics, and across nsqds (issue 13, item 4)."""

from __future__ import annotations

import json

from nsqcli.tail.command import command as tail

from polling import wait_for


def settled(nsqd, topic, channel="c"):
    assert wait_for(lambda: nsqd.channel_stats(topic, channel)["in_flight_count"] == 0)
    return nsqd.channel_stats(topic, channel)


def queue(nsqd, topic, count, prefix=None):
    nsqd.create_topic(topic)
    nsqd.create_channel(topic, "c")
    if count:
        nsqd.mpub(topic, [b"%s-%d" % ((prefix or topic).encode(), i) for i in range(count)])


def tail_json(invoke, addresses, topics, n, *extra):
    args = [a for topic in topics for a in ("--topic", topic)]
    args += [a for address in addresses for a in ("--nsqd-tcp-address", address)]
    result = invoke(tail, [*args, "--channel", "c", "-n", n, "--format", "json", *extra])
    assert result.exit_code == 0, result
    return [json.loads(line) for line in result.stdout_bytes.splitlines()]


def test_three_runs_of_n_5_take_5_each_in_order_and_requeue_nothing(invoke, nsqd):
    queue(nsqd, "five", 40)
    bodies = []
    for _ in range(3):
        records = tail_json(invoke, [nsqd.tcp_address], ["five"], 5)
        assert len(records) == 5
        assert [r["attempts"] for r in records] == [1] * 5
        bodies += [r["body"] for r in records]
    assert bodies == [f"five-{i}" for i in range(15)]
    stats = settled(nsqd, "five")
    assert (stats["depth"], stats["requeue_count"], stats["timeout_count"]) == (25, 0, 0)


def test_n_smaller_than_max_in_flight_and_batches(invoke, nsqd):
    queue(nsqd, "batches", 1000)
    records = tail_json(invoke, [nsqd.tcp_address], ["batches"], 333, "--max-in-flight", "50")
    assert [r["body"] for r in records] == [f"batches-{i}" for i in range(333)]
    stats = settled(nsqd, "batches")
    assert (stats["depth"], stats["requeue_count"]) == (667, 0)


def test_n_across_topics_takes_n_in_total(invoke, nsqd):
    queue(nsqd, "ta", 5)
    queue(nsqd, "tb", 5)
    records = tail_json(invoke, [nsqd.tcp_address], ["ta", "tb"], 7)
    assert len(records) == 7 and len({r["body"] for r in records}) == 7
    a, b = settled(nsqd, "ta"), settled(nsqd, "tb")
    assert (a["requeue_count"], b["requeue_count"]) == (0, 0)
    assert a["depth"] + b["depth"] == 3


def test_a_topic_without_messages_does_not_hold_back_the_last_ones(invoke, nsqd):
    queue(nsqd, "empty", 0)
    queue(nsqd, "full", 10)
    records = tail_json(invoke, [nsqd.tcp_address], ["empty", "full"], 6)
    assert [r["body"] for r in records] == [f"full-{i}" for i in range(6)]
    stats = settled(nsqd, "full")
    assert (stats["depth"], stats["requeue_count"]) == (4, 0)


def test_n_across_nsqds(invoke, nsqd_factory):
    busy, idle = nsqd_factory(), nsqd_factory()
    queue(busy, "spread", 10)
    queue(idle, "spread", 0)
    records = tail_json(invoke, [busy.tcp_address, idle.tcp_address], ["spread"], 6)
    assert [r["body"] for r in records] == [f"spread-{i}" for i in range(6)]
    stats = settled(busy, "spread")
    assert (stats["depth"], stats["requeue_count"]) == (4, 0)


def test_n_across_nsqds_that_both_have_messages(invoke, nsqd_factory):
    first, second = nsqd_factory(), nsqd_factory()
    queue(first, "both", 5, prefix="first")
    queue(second, "both", 5, prefix="second")
    records = tail_json(invoke, [first.tcp_address, second.tcp_address], ["both"], 7)
    assert len({r["body"] for r in records}) == 7 and [r["attempts"] for r in records] == [1] * 7
    one, two = settled(first, "both"), settled(second, "both")
    assert (one["requeue_count"], two["requeue_count"]) == (0, 0)
    assert one["depth"] + two["depth"] == 3
