"""/stats null lists as nsqd v1.3.0 sends them (Go nil slices): nsq-stat and jq users read them.

nsqd/stats.go GetStats returns no Topics for a topic it does not have (``"topics": null``) but
an empty list for no topics or a channel it lacks; http.go's producer list is nil without
``include_clients`` or without a TCP producer (``"producers": null``).
"""

from __future__ import annotations

from test_nsqd_wire import RawNSQ


def stats(nsqd, **params):
    return nsqd.http_json("GET", "/stats", {"format": "json", **params})


def test_a_topic_nsqd_does_not_have_is_null_an_empty_match_is_a_list(nsqd):
    assert stats(nsqd)["topics"] == []
    assert stats(nsqd, topic="missing")["topics"] is None
    nsqd.create_topic("present")
    assert stats(nsqd, topic="present", channel="missing")["topics"] == []
    assert [t["topic_name"] for t in stats(nsqd, topic="present")["topics"]] == ["present"]
    status, body = nsqd.http("GET", "/stats", {"topic": "missing"})  # the text form copes too
    assert status == 200 and b"Topics: None" in body


def test_producers_are_null_without_include_clients_or_without_producers(nsqd):
    nsqd.pub("published", b"over HTTP: not a producer connection")
    assert stats(nsqd)["producers"] is None
    producer = RawNSQ(nsqd)
    producer.pub("published", b"over TCP")
    assert [p["pub_counts"] for p in stats(nsqd)["producers"]] == [[{"topic": "published", "count": 1}]]
    assert stats(nsqd, include_clients="false")["producers"] is None
