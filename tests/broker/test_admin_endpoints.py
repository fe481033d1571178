"""What ``nsqcli topic|channel`` relies on in nsqd's and nsqlookupd's HTTP API (v1.3.0), pinned in
both broker modes: what /topic/empty and /channel/empty drop, and what nsqlookupd keeps of a
topic or channel that an nsqd deleted (why nsqadmin, and nsqcli, delete from nsqlookupd too)."""

from __future__ import annotations

from test_nsqd_delivery import wait_for
from test_nsqd_wire import consumer

from nsqcli.lib.protocol import commands as cmd


def test_emptying_a_topic_drops_what_it_holds_not_what_its_channels_have(nsqd):
    nsqd.create_topic("te")
    nsqd.create_channel("te", "c")
    nsqd.mpub("te", [b"1", b"2"])
    wait_for(lambda: nsqd.channel_stats("te", "c")["depth"] == 2)
    nsqd.http_json("POST", "/topic/pause", {"topic": "te"})
    nsqd.mpub("te", [b"3", b"4", b"5"])
    assert nsqd.topic_stats("te")["depth"] == 3
    nsqd.http_json("POST", "/topic/empty", {"topic": "te"})
    assert nsqd.topic_stats("te")["depth"] == 0
    nsqd.http_json("POST", "/topic/unpause", {"topic": "te"})
    conn = consumer(nsqd, "te", "c", rdy=10)
    assert sorted(m.body for m in conn.messages(2)) == [b"1", b"2"]
    assert nsqd.channel_stats("te", "c")["depth"] == 0  # nothing of 3, 4, 5 came through


def test_emptying_a_channel_drops_deferred_messages_and_frees_its_consumers_rdy(nsqd):
    nsqd.create_topic("ce")
    conn = consumer(nsqd, "ce", "c", rdy=1)
    nsqd.mpub("ce", [b"taken", b"queued"])
    taken = conn.message()
    nsqd.pub("ce", b"later", defer_ms=60_000)
    wait_for(lambda: nsqd.channel_stats("ce", "c")["deferred_count"] == 1)
    nsqd.http_json("POST", "/channel/empty", {"topic": "ce", "channel": "c"})
    stats = nsqd.channel_stats("ce", "c")
    assert (stats["depth"], stats["in_flight_count"], stats["deferred_count"]) == (0, 0, 0)
    # the consumer's in-flight count went back to 0 with the channel's: RDY 1 takes a new one
    nsqd.pub("ce", b"after")
    assert conn.message().body == b"after"
    conn.send(cmd.finish(taken.id))
    assert conn.error().startswith(b"E_FIN_FAILED")


def _registered(lookupd, topic):
    status, _ = lookupd.http("GET", "/lookup", {"topic": topic})
    return status == 200


def test_lookupd_keeps_the_registrations_of_a_topic_an_nsqd_deleted(nsqd_with_lookupd):
    nsqd, lookupd = nsqd_with_lookupd
    nsqd.create_topic("gone")
    nsqd.create_channel("gone", "c")
    wait_for(lambda: _registered(lookupd, "gone") and "c" in lookupd.channels("gone"))
    nsqd.delete_topic("gone")
    wait_for(lambda: lookupd.lookup("gone")["producers"] == [])
    assert "gone" in lookupd.topics() and lookupd.channels("gone") == ["c"]
    # so a topic created again gets the channel back from lookupd, as if never deleted
    nsqd.pub("gone", b"x")
    assert wait_for(lambda: nsqd.channel_stats("gone", "c"))
    # unless lookupd forgot it too: /topic/delete drops the topic and its channels
    nsqd.delete_topic("gone")
    wait_for(lambda: lookupd.lookup("gone")["producers"] == [])
    lookupd.http_json("POST", "/topic/delete", {"topic": "gone"})
    assert lookupd.http("GET", "/lookup", {"topic": "gone"})[0] == 404
    assert "gone" not in lookupd.topics() and lookupd.channels("gone") == []
    nsqd.pub("gone", b"y")
    probe = consumer(nsqd, "gone", "probe")  # the topic flows once channels were looked up
    assert probe.message().body == b"y"
    assert [c["channel_name"] for c in nsqd.topic_stats("gone")["channels"]] == ["probe"]


def test_lookupd_keeps_a_deleted_channel_unless_ephemeral(nsqd_with_lookupd):
    nsqd, lookupd = nsqd_with_lookupd
    nsqd.create_topic("chans")
    nsqd.create_channel("chans", "durable")
    kept_open = consumer(nsqd, "chans", "tmp#ephemeral")
    wait_for(lambda: set(lookupd.channels("chans")) == {"durable", "tmp#ephemeral"})
    nsqd.delete_channel("chans", "durable")
    nsqd.delete_channel("chans", "tmp#ephemeral")
    assert kept_open.is_closed()
    wait_for(lambda: "tmp#ephemeral" not in lookupd.channels("chans"))
    assert lookupd.channels("chans") == ["durable"]
    lookupd.http_json("POST", "/channel/delete", {"topic": "chans", "channel": "durable"})
    assert lookupd.channels("chans") == []
    status, body = lookupd.http("POST", "/channel/delete", {"topic": "chans", "channel": "durable"})
    assert (status, body) == (404, b'{"message":"CHANNEL_NOT_FOUND"}')
