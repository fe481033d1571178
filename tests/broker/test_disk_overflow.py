"""nsqd's memory + disk queues: messages beyond mem_queue_size go to the disk queue
(``backend_depth``) and all come back; #ephemeral overflow is dropped; a data path keeps topics,
channels, paused states and queued messages across a restart, and a clean stop writes out what
memory held, in flight or deferred. Run against the embedded nsqd and a real one."""

from __future__ import annotations

import os

import pytest

from nsqcli.broker.daemons import nsqd_flags
from nsqcli.lib.protocol import commands as cmd

from test_nsqd_wire import RawNSQ, consumer

from polling import wait_for

MEM = 10  # mem_queue_size


def bodies(prefix: str, count: int) -> list[bytes]:
    return [b"%s-%03d" % (prefix.encode(), i) for i in range(count)]


def take(conn, count: int, finish: bool = True) -> list:
    """``count`` messages from a consumer (its RDY must allow them), FINed unless told not to."""
    messages = conn.messages(count)
    if finish:
        for message in messages:
            conn.send(cmd.finish(message.id))
    return messages


def settled_channel(nsqd, topic: str, channel: str, depth: int) -> dict:
    """The channel's stats once the topic has handed it everything and ``depth`` are queued."""
    def check():
        stats = nsqd.channel_stats(topic, channel)
        return (stats is not None and stats["depth"] == depth
                and nsqd.topic_stats(topic)["depth"] == 0)
    assert wait_for(check), (nsqd.topic_stats(topic), depth)
    return nsqd.channel_stats(topic, channel)


def files_under(path) -> list[str]:
    return [name for _, _, names in os.walk(path) for name in names]


@pytest.mark.parametrize("disk_options", [
    {},
    {"max_bytes_per_file": 1024, "sync_every": 1},  # many small segment files, fsync per message
], ids=["defaults", "small-segments"])
def test_overflow_goes_to_the_disk_queue_and_comes_back_complete(nsqd_factory, disk_options):
    nsqd = nsqd_factory(mem_queue_size=MEM, **disk_options)
    nsqd.create_topic("spill")
    nsqd.create_channel("spill", "c")
    sent = bodies("spill", 100)
    nsqd.mpub("spill", sent)
    stats = settled_channel(nsqd, "spill", "c", 100)
    assert stats["backend_depth"] == 100 - MEM  # memory holds mem_queue_size, disk the rest
    conn = consumer(nsqd, "spill", "c", rdy=30)
    first = take(conn, 30, finish=False)
    stats = nsqd.channel_stats("spill", "c")
    assert (stats["depth"], stats["in_flight_count"]) == (70, 30)
    assert 0 <= stats["depth"] - stats["backend_depth"] <= MEM  # depth = memory + disk
    for message in first:
        conn.send(cmd.finish(message.id))
    conn.send(cmd.ready(70))
    rest = take(conn, 70)
    assert sorted(m.body for m in first + rest) == sent
    assert wait_for(lambda: nsqd.channel_stats("spill", "c")["in_flight_count"] == 0)
    stats = nsqd.channel_stats("spill", "c")
    assert (stats["depth"], stats["backend_depth"], stats["message_count"]) == (0, 0, 100)


def test_a_topic_without_channels_keeps_its_overflow_on_disk(nsqd_factory):
    nsqd = nsqd_factory(mem_queue_size=MEM)
    sent = bodies("held", 60)
    nsqd.mpub("held", sent)
    topic = nsqd.topic_stats("held")
    assert (topic["depth"], topic["backend_depth"]) == (60, 60 - MEM)
    conn = consumer(nsqd, "held", "c", rdy=60)
    assert sorted(m.body for m in take(conn, 60)) == sent
    assert wait_for(lambda: nsqd.topic_stats("held")["depth"] == 0)
    assert nsqd.topic_stats("held")["backend_depth"] == 0


def test_ephemeral_overflow_is_dropped_and_never_written(nsqd_factory, tmp_path):
    nsqd = nsqd_factory(mem_queue_size=MEM, data_path=str(tmp_path))
    nsqd.mpub("gone#ephemeral", bodies("e", 50))
    topic = nsqd.topic_stats("gone#ephemeral")
    assert (topic["depth"], topic["backend_depth"], topic["message_count"]) == (MEM, 0, 50)
    keeper = consumer(nsqd, "durable", "c#ephemeral", rdy=0)  # noqa: F841 - keeps the channel
    nsqd.mpub("durable", bodies("d", 50))
    stats = settled_channel(nsqd, "durable", "c#ephemeral", MEM)
    assert (stats["backend_depth"], stats["message_count"]) == (0, 50)
    assert not [name for name in files_under(tmp_path) if "ephemeral" in name]


def test_a_data_path_keeps_topics_channels_paused_states_and_messages(nsqd_factory, tmp_path):
    nsqd = nsqd_factory(mem_queue_size=MEM, data_path=str(tmp_path))
    nsqd.create_topic("kept")
    nsqd.create_channel("kept", "a")
    nsqd.create_channel("kept", "b")
    nsqd.http_json("POST", "/channel/pause", {"topic": "kept", "channel": "b"})
    nsqd.mpub("kept", bodies("k", 40))
    nsqd.create_topic("held")
    nsqd.http_json("POST", "/topic/pause", {"topic": "held"})
    nsqd.mpub("held", bodies("h", 25))
    settled_channel(nsqd, "kept", "a", 40)
    settled_channel(nsqd, "kept", "b", 40)
    nsqd.close()  # the process is gone; a new one starts on the same data path

    again = nsqd_factory(mem_queue_size=MEM, data_path=str(tmp_path))
    kept, held = again.topic_stats("kept"), again.topic_stats("held")
    channels = {c["channel_name"]: c for c in kept["channels"]}
    assert sorted(channels) == ["a", "b"]
    assert (channels["a"]["paused"], channels["b"]["paused"]) == (False, True)
    assert (channels["a"]["depth"], channels["b"]["depth"]) == (40, 40)
    assert (held["paused"], held["depth"], held["channels"]) == (True, 25, [])
    assert kept["message_count"] == 0  # counters start again, as in a new nsqd process
    assert sorted(m.body for m in take(consumer(again, "kept", "a", rdy=40), 40)) == \
        bodies("k", 40)
    again.http_json("POST", "/channel/unpause", {"topic": "kept", "channel": "b"})
    assert sorted(m.body for m in take(consumer(again, "kept", "b", rdy=40), 40)) == \
        bodies("k", 40)
    again.http_json("POST", "/topic/unpause", {"topic": "held"})
    assert sorted(m.body for m in take(consumer(again, "held", "c", rdy=25), 25)) == \
        bodies("h", 25)


def test_a_clean_stop_writes_out_memory_in_flight_and_deferred_messages(nsqd):
    conn = consumer(nsqd, "flush", "c", rdy=3)
    sent = bodies("f", 5)
    nsqd.mpub("flush", sent)
    in_flight = take(conn, 3, finish=False)
    nsqd.pub("flush", b"deferred", defer_ms=3_600_000)
    assert wait_for(lambda: nsqd.channel_stats("flush", "c")["deferred_count"] == 1)
    nsqd.stop()
    nsqd.start()
    stats = nsqd.channel_stats("flush", "c")
    assert (stats["depth"], stats["in_flight_count"], stats["deferred_count"]) == (6, 0, 0)
    # the deferral is not kept (nsqd writes a deferred message to disk as a plain one)
    again = take(consumer(nsqd, "flush", "c", rdy=6), 6)
    assert sorted(m.body for m in again) == sorted(sent + [b"deferred"])
    attempts = {m.body: m.attempts for m in again}
    assert all(attempts[m.body] == 2 for m in in_flight)  # delivered once before the stop
    assert sum(1 for a in attempts.values() if a == 1) == 3


@pytest.mark.embedded_only("nsqd takes from memory and disk at random; ours keeps queue order")
def test_the_embedded_nsqd_delivers_in_queue_order_across_memory_and_disk(nsqd_factory):
    nsqd = nsqd_factory(mem_queue_size=MEM)
    sent = bodies("o", 45)
    nsqd.mpub("order", sent[:25])  # no channel yet: the topic's memory and disk queue
    conn = consumer(nsqd, "order", "c", rdy=5)
    received = take(conn, 5)
    nsqd.mpub("order", sent[25:])  # behind what the channel's disk queue holds
    conn.send(cmd.ready(40))
    received += take(conn, 40)
    assert [m.body for m in received] == sent


@pytest.mark.embedded_only("the full disk is simulated inside the embedded broker")
def test_a_publish_the_disk_queue_cannot_take_fails_like_nsqd(nsqd_factory):
    nsqd = nsqd_factory(mem_queue_size=1)
    nsqd.pub("full", b"in memory")
    topic = nsqd.broker.topics["full"]

    def disk_full(messages):
        raise OSError(28, "No space left on device")

    topic.backend.put_messages = disk_full
    conn = RawNSQ(nsqd)
    conn.send(cmd.pub("full", b"one too many"))
    assert conn.error() == b"E_PUB_FAILED PUB failed [Errno 28] No space left on device"
    assert conn.is_closed()
    conn = RawNSQ(nsqd)
    conn.send(cmd.mpub("full", [b"a", b"b"]))
    assert conn.error().startswith(b"E_MPUB_FAILED MPUB failed ")
    assert nsqd.http("POST", "/pub", {"topic": "full"}, b"x") == (503, b'{"message":"EXITING"}')
    assert nsqd.topic_stats("full")["message_count"] == 1


def test_the_disk_options_are_nsqd_flags():
    # data_path is no flag here: nsqd_process passes it (or a temporary directory) as --data-path
    flags = nsqd_flags({"max_bytes_per_file": 4096, "sync_every": 10, "sync_timeout_ms": 500,
                        "data_path": "/given"})
    assert flags == ["--max-bytes-per-file=4096", "--sync-every=10", "--sync-timeout=500ms"]
