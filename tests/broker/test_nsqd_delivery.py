"""Delivery semantics: topics hold messages until a channel exists, channels fan out, RDY limits
in-flight, timeouts redeliver, REQ/DPUB defer, TOUCH extends, ephemeral cleanup, pause."""

from __future__ import annotations

import time

import pytest

from nsqcli.lib.protocol import commands as cmd

from test_nsqd_wire import RawNSQ, consumer

#: nsqd serves in-flight timeouts and deferred messages only of the channels in its queue-scan
#: list, refreshed every 5 s from its start (QueueScanRefreshInterval, no flag): a new channel's
#: timer events can come this much after they were due (nsqcli/broker/nsqd/queue_scan.py).
SCAN_REFRESH = 5.0
#: the 100 ms scan interval and a loaded two-core machine
SLACK = 2.0
#: the embedded nsqd refreshes its list every 100 ms here (an embedded-only knob, dropped for a
#: real nsqd); the waits below allow for nsqd's 5 s either way
FAST_SCAN = {"queue_scan_refresh_interval_ms": 100}


def due_within(delay: float) -> float:
    """How long to wait for a timer event due in ``delay`` seconds on a new channel."""
    return delay + SCAN_REFRESH + SLACK


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def nsqd(nsqd_factory):
    return nsqd_factory(**FAST_SCAN)


def scanned_consumer(nsqd, topic: str, channel: str, **identify) -> RawNSQ:
    """A consumer (RDY 1, nothing in flight) of a channel that nsqd's queue scan already serves,
    so that its timers fire on time (to the 100 ms scan interval): a probe requeued with a 1 ms
    delay came back. For tests whose assertion needs a timer to fire early enough."""
    conn = consumer(nsqd, topic, channel, rdy=1, **identify)
    nsqd.pub(topic, b"probe")
    probe = conn.message()
    conn.send(cmd.requeue(probe.id, 1))
    conn.send(cmd.finish(conn.message(timeout=due_within(0)).id))
    return conn


def test_topic_keeps_messages_until_its_first_channel(nsqd):
    nsqd.mpub("held", [b"1", b"2", b"3"])
    stats = nsqd.topic_stats("held")
    assert stats["depth"] == 3 and stats["channels"] == []
    conn = consumer(nsqd, "held", "ch", rdy=10)
    assert sorted(m.body for m in conn.messages(3)) == [b"1", b"2", b"3"]
    assert wait_for(lambda: nsqd.topic_stats("held")["depth"] == 0)


def test_every_channel_gets_every_message(nsqd):
    nsqd.create_topic("fan")
    nsqd.create_channel("fan", "a")
    nsqd.create_channel("fan", "b")
    nsqd.mpub("fan", [b"x", b"y"])
    for channel in ("a", "b"):
        assert nsqd.channel_stats("fan", channel)["depth"] == 2
        conn = consumer(nsqd, "fan", channel, rdy=5)
        assert sorted(m.body for m in conn.messages(2)) == [b"x", b"y"]


def test_channel_created_later_gets_only_later_messages(nsqd):
    first = consumer(nsqd, "later", "first", rdy=5)
    nsqd.pub("later", b"early")
    first.message()
    nsqd.create_channel("later", "second")
    nsqd.pub("later", b"late")
    assert nsqd.channel_stats("later", "second")["message_count"] == 1


def test_rdy_bounds_in_flight(nsqd):
    nsqd.mpub("rdy", [b"%d" % i for i in range(5)])
    conn = consumer(nsqd, "rdy", "ch", rdy=2)
    got = conn.messages(2)
    conn.nothing_for(0.3)
    stats = nsqd.channel_stats("rdy", "ch")
    assert stats["in_flight_count"] == 2 and stats["depth"] == 3
    conn.send(cmd.finish(got[0].id))
    conn.message()
    conn.nothing_for(0.2)
    conn.send(cmd.ready(0))
    conn.send(cmd.finish(got[1].id))
    conn.nothing_for(0.3)


def test_consumers_share_a_channel(nsqd):
    nsqd.mpub("share", [b"%d" % i for i in range(10)])
    a = consumer(nsqd, "share", "ch", rdy=5)
    b = consumer(nsqd, "share", "ch", rdy=5)
    got = a.messages(5) + b.messages(5)
    assert sorted(m.body for m in got) == sorted(b"%d" % i for i in range(10))


def test_in_flight_timeout_redelivers_with_attempts_plus_one(nsqd):
    nsqd.pub("timeout", b"slow")
    conn = consumer(nsqd, "timeout", "ch", rdy=1, msg_timeout=1000)
    first = conn.message()
    start = time.monotonic()
    again = conn.message(timeout=due_within(1))
    assert time.monotonic() - start > 0.5
    assert (again.id, again.body, again.attempts) == (first.id, b"slow", 2)
    assert first.timestamp == again.timestamp
    stats = nsqd.channel_stats("timeout", "ch")
    assert stats["timeout_count"] == 1
    conn.send(cmd.finish(first.id))
    conn.send(cmd.finish(first.id))
    assert b"ID not in flight" in conn.error()


def test_fin_after_timeout_fails(nsqd):
    nsqd.pub("late_fin", b"m")
    conn = consumer(nsqd, "late_fin", "ch", rdy=1, msg_timeout=1000)
    msg = conn.message()
    conn.send(cmd.ready(0))
    wait_for(lambda: nsqd.channel_stats("late_fin", "ch")["timeout_count"] == 1, due_within(1))
    conn.send(cmd.finish(msg.id))
    assert conn.error() == b"E_FIN_FAILED FIN " + msg.id + b" failed ID not in flight"


def test_disconnected_consumers_messages_come_back_after_timeout(nsqd):
    nsqd.pub("orphan", b"m")
    gone = consumer(nsqd, "orphan", "ch", rdy=1, msg_timeout=1000)
    first = gone.message()
    gone.close()
    other = consumer(nsqd, "orphan", "ch", rdy=1)
    again = other.message(timeout=due_within(1))
    assert again.id == first.id and again.attempts == 2


def test_a_new_channels_timers_wait_for_the_scan_list_refresh(nsqd_factory):
    nsqd = nsqd_factory()  # nsqd's own 5 s refresh
    conn = consumer(nsqd, "fresh", "ch", rdy=1)
    nsqd.pub("fresh", b"m")
    msg = conn.message()
    conn.send(cmd.requeue(msg.id, 1))  # due 1 ms later, but the channel is not in the scan list
    again = conn.message(timeout=due_within(0))
    # served at the first refresh after the channel was created: at least 5 s after the start
    assert time.monotonic() - nsqd.started_at >= SCAN_REFRESH
    assert again.id == msg.id and again.attempts == 2


def test_req_requeues_immediately(nsqd):
    nsqd.pub("req", b"m")
    conn = consumer(nsqd, "req", "ch", rdy=1)
    first = conn.message()
    conn.send(cmd.requeue(first.id, 0))
    again = conn.message(timeout=1)
    assert again.id == first.id and again.attempts == 2
    assert nsqd.channel_stats("req", "ch")["requeue_count"] == 1


def test_req_with_delay_goes_through_deferred_queue(nsqd):
    nsqd.pub("req_delay", b"m")
    conn = consumer(nsqd, "req_delay", "ch", rdy=1)
    first = conn.message()
    conn.send(cmd.requeue(first.id, 700))
    stats = wait_for(lambda: (s := nsqd.channel_stats("req_delay", "ch"))["deferred_count"] == 1 and s)
    assert stats["in_flight_count"] == 0
    conn.nothing_for(0.4)
    again = conn.message(timeout=due_within(0.3))
    assert again.id == first.id and again.attempts == 2


def test_req_delay_beyond_max_is_clamped_not_refused(nsqd_factory):
    nsqd = nsqd_factory(max_req_timeout_ms=1000, **FAST_SCAN)
    nsqd.pub("clamp", b"m")
    conn = consumer(nsqd, "clamp", "ch", rdy=1)
    first = conn.message()
    conn.send(cmd.requeue(first.id, 999999))
    again = conn.message(timeout=due_within(1))  # clamped to 1 s (not 999 s)
    assert again.id == first.id


def test_dpub_delivers_after_its_delay(nsqd):
    conn = consumer(nsqd, "dpub", "ch", rdy=5)
    producer = RawNSQ(nsqd)
    producer.send(cmd.dpub("dpub", 800, b"deferred"))
    producer.ok()
    producer.pub("dpub", b"now")
    assert conn.message().body == b"now"
    assert nsqd.channel_stats("dpub", "ch")["deferred_count"] == 1
    conn.nothing_for(0.4)
    msg = conn.message(timeout=due_within(0.4))
    assert msg.body == b"deferred" and msg.attempts == 1


def test_http_pub_defer(nsqd):
    conn = consumer(nsqd, "http_defer", "ch", rdy=5)
    nsqd.pub("http_defer", b"later", defer_ms=600)
    conn.nothing_for(0.3)
    assert conn.message(timeout=due_within(0.3)).body == b"later"


def test_touch_extends_the_timeout(nsqd):
    conn = scanned_consumer(nsqd, "touch", "ch", msg_timeout=1000)  # else nothing times out early
    nsqd.pub("touch", b"m")
    msg = conn.message()
    for _ in range(3):
        time.sleep(0.5)
        conn.send(cmd.touch(msg.id))
    conn.nothing_for(0.3)  # 1.8 s after delivery, still in flight thanks to TOUCH
    assert nsqd.channel_stats("touch", "ch")["timeout_count"] == 0
    again = conn.message(timeout=3)
    assert again.id == msg.id and again.attempts == 2


def test_touch_is_bounded_by_max_msg_timeout(nsqd_factory):
    nsqd = nsqd_factory(max_msg_timeout_ms=1500, **FAST_SCAN)
    conn = scanned_consumer(nsqd, "touch_max", "ch", msg_timeout=1000)
    nsqd.pub("touch_max", b"m")
    msg = conn.message()
    start = time.monotonic()
    time.sleep(0.6)
    conn.send(cmd.touch(msg.id))  # would reach 1.6 s; capped at 1.5 s after delivery
    again = conn.message(timeout=3)
    assert again.id == msg.id
    assert time.monotonic() - start < 2.4


def test_ephemeral_channel_goes_with_its_last_consumer(nsqd):
    a = consumer(nsqd, "eph", "ch#ephemeral")
    b = consumer(nsqd, "eph", "ch#ephemeral")
    assert nsqd.channel_stats("eph", "ch#ephemeral")["client_count"] == 2
    a.close()
    wait_for(lambda: nsqd.channel_stats("eph", "ch#ephemeral")["client_count"] == 1)
    b.close()
    wait_for(lambda: nsqd.channel_stats("eph", "ch#ephemeral") is None)
    assert nsqd.topic_stats("eph") is not None  # a normal topic stays


def test_ephemeral_topic_goes_with_its_last_channel(nsqd):
    conn = consumer(nsqd, "gone#ephemeral", "ch#ephemeral")
    assert nsqd.topic_stats("gone#ephemeral") is not None
    conn.close()
    wait_for(lambda: nsqd.topic_stats("gone#ephemeral") is None)


def test_paused_channel_stops_delivery(nsqd):
    conn = consumer(nsqd, "pause_ch", "ch", rdy=5)
    nsqd.http_json("POST", "/channel/pause", {"topic": "pause_ch", "channel": "ch"})
    assert nsqd.channel_stats("pause_ch", "ch")["paused"] is True
    nsqd.pub("pause_ch", b"m")
    conn.nothing_for(0.4)
    assert nsqd.channel_stats("pause_ch", "ch")["depth"] == 1
    nsqd.http_json("POST", "/channel/unpause", {"topic": "pause_ch", "channel": "ch"})
    assert conn.message(timeout=2).body == b"m"


def test_paused_topic_holds_messages(nsqd):
    conn = consumer(nsqd, "pause_t", "ch", rdy=5)
    nsqd.http_json("POST", "/topic/pause", {"topic": "pause_t"})
    nsqd.pub("pause_t", b"m")
    conn.nothing_for(0.4)
    stats = nsqd.topic_stats("pause_t")
    assert stats["paused"] is True and stats["depth"] == 1
    nsqd.http_json("POST", "/topic/unpause", {"topic": "pause_t"})
    assert conn.message(timeout=2).body == b"m"


def test_empty_channel_drops_queue_and_in_flight(nsqd):
    nsqd.mpub("emptied", [b"1", b"2", b"3"])
    conn = consumer(nsqd, "emptied", "ch", rdy=1)
    msg = conn.message()
    nsqd.http_json("POST", "/channel/empty", {"topic": "emptied", "channel": "ch"})
    stats = nsqd.channel_stats("emptied", "ch")
    assert stats["depth"] == 0 and stats["in_flight_count"] == 0
    conn.send(cmd.finish(msg.id))
    assert b"ID not in flight" in conn.error()


def test_deleting_a_channel_closes_its_consumers(nsqd):
    conn = consumer(nsqd, "del", "ch")
    nsqd.delete_channel("del", "ch")
    assert conn.is_closed()
    assert nsqd.channel_stats("del", "ch") is None


def test_stats_count_messages_and_clients(nsqd):
    producer = RawNSQ(nsqd)
    producer.pub("counted", b"a")
    producer.send(cmd.mpub("counted", [b"b", b"c"]))
    producer.ok()
    conn = consumer(nsqd, "counted", "ch", rdy=3, client_id="cid", user_agent="ua/1")
    msgs = conn.messages(3)
    conn.send(cmd.finish(msgs[0].id) + cmd.requeue(msgs[1].id, 0))
    wait_for(lambda: nsqd.channel_stats("counted", "ch")["clients"][0]["finish_count"] == 1)
    topic = nsqd.topic_stats("counted")
    assert topic["message_count"] == 3 and topic["message_bytes"] == 3
    channel = topic["channels"][0]
    assert channel["client_count"] == 1 and channel["requeue_count"] == 1
    client = channel["clients"][0]
    assert client["client_id"] == "cid" and client["user_agent"] == "ua/1"
    assert client["ready_count"] == 3 and client["state"] == 3
    assert client["requeue_count"] == 1 and client["message_count"] >= 3
    producers = nsqd.stats()["producers"]
    assert any(p["pub_counts"] == [{"topic": "counted", "count": 3}] for p in producers)


def test_heartbeats_and_silent_client_close(nsqd):
    conn = RawNSQ(nsqd)
    conn.identify(heartbeat_interval=1000)
    assert conn.read_frame(timeout=3, heartbeats=True) == (0, b"_heartbeat_")
    assert conn.is_closed(timeout=4)  # silent for 2 x 1 s


def test_sample_rate_delivers_a_sample(nsqd):
    conn = consumer(nsqd, "sampled", "ch", rdy=1000, sample_rate=10)
    nsqd.mpub("sampled", [b"%d" % i for i in range(600)])
    wait_for(lambda: nsqd.channel_stats("sampled", "ch")["depth"] == 0)
    received = 0
    try:
        while True:
            conn.message(timeout=0.5)
            received += 1
    except (TimeoutError, OSError):
        pass
    assert 10 <= received <= 180  # about 11 % of 600; the rest are dropped, not queued
    assert nsqd.channel_stats("sampled", "ch")["in_flight_count"] == received


def test_ephemeral_channel_discards_beyond_mem_queue_size(nsqd_factory):
    nsqd = nsqd_factory(mem_queue_size=5)
    conn = consumer(nsqd, "overflow", "ch#ephemeral", rdy=0)  # noqa: F841 - keeps the channel
    nsqd.mpub("overflow", [b"%d" % i for i in range(20)])
    stats = wait_for(lambda: (s := nsqd.channel_stats("overflow", "ch#ephemeral"))["message_count"] == 20 and s)
    assert stats["depth"] == 5
