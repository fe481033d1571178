"""nsq-stat's pure model: /stats bodies in, summed rows with rates and trends out (no network)."""

from __future__ import annotations

import json

import pytest

from nsqcli.stat.model import Answer, Counts, Report, Row, Tracker, parse_stats, sort_rows

#: a /stats?format=json&include_clients=false&include_mem=false body as nsqd v1.3.0 sends it
REAL_BODY = json.dumps({
    "version": "1.3.0", "health": "OK", "start_time": 1796464740,
    "topics": [{
        "topic_name": "t1", "depth": 1, "backend_depth": 0, "message_count": 9,
        "message_bytes": 50, "paused": False,
        "e2e_processing_latency": {"count": 0, "percentiles": None},
        "channels": [{
            "channel_name": "c1", "depth": 7, "backend_depth": 5, "in_flight_count": 2,
            "deferred_count": 1, "message_count": 9, "requeue_count": 3, "timeout_count": 4,
            "client_count": 2, "clients": None, "paused": True,
            "e2e_processing_latency": {"count": 0, "percentiles": None},
        }],
    }],
    "producers": None,
}).encode()


def channel(depth: int, messages: int, in_flight: int = 0, deferred: int = 0,
            paused: bool = False, backend: int = 0) -> Counts:
    return Counts(depth, backend, messages, paused, in_flight, deferred, 0, 0, 1)


def test_parse_stats_reads_nsqds_shape():
    counts = parse_stats(REAL_BODY)
    assert counts[("t1", None)] == Counts(1, 0, 9, False)
    c1 = counts[("t1", "c1")]
    assert c1 == Counts(7, 5, 9, True, in_flight=2, deferred=1, requeued=3, timed_out=4, clients=2)
    assert c1.memory_depth == 2  # nsqd's depth is memory + backend


def test_parse_stats_narrows_and_a_channel_leaves_the_topic_rows_out():
    assert list(parse_stats(REAL_BODY, topic="t1")) == [("t1", None), ("t1", "c1")]
    assert list(parse_stats(REAL_BODY, channel="c1")) == [("t1", "c1")]
    assert parse_stats(REAL_BODY, topic="other") == {}
    assert parse_stats(REAL_BODY, channel="other") == {}


def test_parse_stats_null_topics_and_pre_1_0_wrapping():
    # nsqd answers "topics": null when asked for a topic it does not have
    assert parse_stats(b'{"version":"1.3.0","topics":null,"producers":null}', topic="x") == {}
    wrapped = json.dumps({"status_code": 200, "status_txt": "OK", "data": json.loads(REAL_BODY)})
    assert parse_stats(wrapped) == parse_stats(REAL_BODY)


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"message": "NOT_FOUND"}', b'{"topics": 5}', b"[" * 100_000,
    b'{"topics": [{"topic_name": "t", "depth": -1, "backend_depth": 0, "message_count": 0}]}',
    b'{"topics": [{"topic_name": "t", "depth": true, "backend_depth": 0, "message_count": 0}]}',
    b'{"topics": [{"depth": 0, "backend_depth": 0, "message_count": 0}]}',
    b'{"topics": [{"topic_name": "t", "depth": 0, "backend_depth": 0, "message_count": 0, '
    b'"channels": [{"channel_name": "c", "depth": 0}]}]}',
])
def test_parse_stats_refuses_what_is_not_nsqds_shape(body):
    with pytest.raises(ValueError):
        parse_stats(body)


def test_first_poll_has_no_rates_then_rates_per_second():
    tracker = Tracker()
    (first,) = tracker.rows([Answer("a", 10.0, {("t", "c"): channel(10, 10)})])
    assert (first.rate_in, first.rate_out, first.depth_change, first.trend) == (None, None, None, None)
    # 2 s later: 20 more in; depth 10 -> 5 with 3 in flight and 2 deferred: 20 + 10 - 10 left
    (second,) = tracker.rows([Answer("a", 12.0, {("t", "c"): channel(5, 30, 3, 2)})])
    assert second.rate_in == 10.0
    assert second.rate_out == 10.0  # finished: 20 in - ((5 + 3 + 2) - 10) unfinished growth
    assert second.depth_change == -5 and second.trend == "falling"
    (third,) = tracker.rows([Answer("a", 13.0, {("t", "c"): channel(9, 34, 3, 2)})])
    assert (third.rate_in, third.rate_out, third.depth_change, third.trend) == (4.0, 0.0, 4, "rising")
    (fourth,) = tracker.rows([Answer("a", 14.0, {("t", "c"): channel(9, 34, 3, 2)})])
    assert (fourth.rate_in, fourth.rate_out, fourth.trend) == (0.0, 0.0, "steady")


def test_topic_rate_out_is_what_it_handed_to_its_channels():
    tracker = Tracker()
    tracker.rows([Answer("a", 0.0, {("t", None): Counts(8, 0, 8)})])
    (row,) = tracker.rows([Answer("a", 1.0, {("t", None): Counts(0, 0, 10)})])
    assert (row.rate_in, row.rate_out, row.depth_change) == (2.0, 10.0, -8)


def test_a_counter_that_went_back_gives_no_rate():
    tracker = Tracker()
    tracker.rows([Answer("a", 0.0, {("t", "c"): channel(5, 100)})])
    (row,) = tracker.rows([Answer("a", 1.0, {("t", "c"): channel(7, 3)})])  # nsqd restarted
    assert (row.rate_in, row.rate_out, row.depth_change) == (None, None, 2)


def test_sums_over_nsqds_from_each_nsqds_own_previous_answer():
    tracker = Tracker()
    key = ("t", "c")
    tracker.rows([Answer("a", 0.0, {key: channel(10, 10)}), Answer("b", 0.0, {key: channel(1, 1)})])
    # b is down: the sum is a's alone, and its rate does not count b's disappearance
    (row,) = tracker.rows([Answer("a", 1.0, {key: channel(10, 20)}), Answer("b", 1.0, error="refused")])
    assert (row.counts.depth, row.nsqds, row.rate_in, row.depth_change) == (10, 1, 10.0, 0)
    # b is back: its rate is over the 2 s since its last answer
    (row,) = tracker.rows([Answer("a", 2.0, {key: channel(10, 30)}), Answer("b", 2.0, {key: channel(5, 9)})])
    assert row.nsqd is None and row.nsqds == 2
    assert row.counts == Counts(15, 0, 39, False, 0, 0, 0, 0, 2)
    assert row.rate_in == 10.0 + 4.0
    assert row.depth_change == 0 + 4


def test_a_new_nsqd_adds_its_counts_but_no_rate_yet():
    tracker = Tracker()
    key = ("t", "c")
    tracker.rows([Answer("a", 0.0, {key: channel(1, 1)})])
    (row,) = tracker.rows([Answer("a", 1.0, {key: channel(1, 3)}), Answer("b", 1.0, {key: channel(4, 4)})])
    assert (row.counts.depth, row.rate_in, row.depth_change) == (5, 2.0, 0)


def test_per_nsqd_rows_and_partial_pause():
    answers = [Answer("a", 0.0, {("t", "c"): channel(1, 1, paused=True)}),
               Answer("b", 0.0, {("t", "c"): channel(3, 3)})]
    per_nsqd = Tracker(per_nsqd=True).rows(answers)
    assert [(r.nsqd, r.counts.depth, r.paused_on) for r in per_nsqd] == [("b", 3, 0), ("a", 1, 1)]
    (summed,) = Tracker().rows(answers)
    assert (summed.nsqds, summed.paused_on, summed.counts.paused) == (2, 1, True)


def test_sorted_by_depth_topics_with_their_channels():
    def row(topic, channel_name, depth, nsqd=None):
        counts = Counts(depth, 0, depth) if channel_name is None else channel(depth, depth)
        return Row(topic, channel_name, nsqd, counts)

    rows = [row("small", None, 0), row("small", "x", 1), row("big", None, 0), row("big", "a", 5),
            row("big", "b", 50), row("empty", None, 0), row("alpha", None, 0)]
    order = [(r.topic, r.channel) for r in sort_rows(rows)]
    assert order == [("big", None), ("big", "b"), ("big", "a"), ("small", None), ("small", "x"),
                     ("alpha", None), ("empty", None)]


def test_report_failed_only_when_nothing_answered_and_something_was_asked():
    def report(nsqds, lookupds=()):
        return Report(1, 0.0, [], nsqds, list(lookupds))

    assert report([("a", "refused")]).failed
    assert not report([("a", "refused"), ("b", None)]).failed
    assert not report([]).failed  # lookupd lists no nsqd: an empty cluster, not a failure
    assert report([], [("l", "refused")]).failed
    assert report([("a", "refused")], [("l", None)]).failed
    tracker = Tracker()
    answers = [Answer("a", 0.0, error="refused"), Answer("b", 0.0, {})]
    assert tracker.report(1, 5.0, answers).down == [("a", "refused")]
