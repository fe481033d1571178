"""nsq-to-nsq's parts without a broker: the JSON filters against Go nsq_to_nsq's semantics, the
counts it prints, and how a destination topic answers each source message (fake publisher)."""

from __future__ import annotations

import asyncio
import math
from types import SimpleNamespace

import pytest

from fake_message import FakeMessage
from nsqcli.cli.exit_codes import ToolError
from nsqcli.to_nsq import destination as destination_module
from nsqcli.to_nsq.destination import DestinationTopic
from nsqcli.to_nsq.json_filter import FilterResult, JsonFilter, go_parse_float
from nsqcli.to_nsq.publishers import DestinationDown
from nsqcli.to_nsq.tally import Tally

NOT_JSON, FILTERED = FilterResult.NOT_JSON, FilterResult.FILTERED

# ---- the JSON filters: what Go's nsq_to_nsq passes, drops or rewrites -------------------------


@pytest.mark.parametrize("text, value", [
    ("1", 1.0), ("-1.5", -1.5), ("2e3", 2000.0), ("+.5", 0.5), ("5.", 5.0), ("1_000", 1000.0),
    ("0x1p4", 16.0), ("0x1.8p1", 3.0), ("Inf", math.inf), ("-infinity", -math.inf),
    # what strconv.ParseFloat refuses: then the required value only matches a string
    ("1__0", None), ("_1", None), ("1e400", None), (" 1", None), ("0x10", None), ("abc", None),
    ("", None), ("1e", None),
])
def test_go_parse_float(text, value):
    assert go_parse_float(text) == value


def test_go_parse_float_nan():
    assert math.isnan(go_parse_float("NaN"))


@pytest.mark.parametrize("body, field, value, result", [
    (b'{"a":"x"}', "a", None, b'{"a":"x"}'),                      # the field is there
    (b'{"a":null}', "a", None, b'{"a":null}'),
    (b'{"b":1}', "a", None, FILTERED),                            # it is not
    (b'{"a":"x"}', "a", "x", b'{"a":"x"}'),                       # string equal
    (b'{"a":"x "}', "a", "x", FILTERED),
    (b'{"a":"1"}', "a", "1", b'{"a":"1"}'),                       # a string is compared as text
    (b'{"a":"1.0"}', "a", "1", FILTERED),
    (b'{"a":1}', "a", "1.0", b'{"a":1}'),                         # a number as a float64
    (b'{"a":1.0e0}', "a", "1", b'{"a":1.0e0}'),
    (b'{"a":-0}', "a", "0", b'{"a":-0}'),
    (b'{"a":2}', "a", "1", FILTERED),
    (b'{"a":true}', "a", "true", FILTERED),                       # no other type compares
    (b'{"a":true}', "a", "1", FILTERED),
    (b'{"a":null}', "a", "null", FILTERED),
    (b'{"a":[1]}', "a", "1", FILTERED),
    (b'{"a":1}', "a", "x", FILTERED),                             # x is no number
    (b'{"b":1}', "a", "1", FILTERED),  # Go errs (requeue with backoff, forever): filtered here
    (b'{"a":"x"}', "a", "", b'{"a":"x"}'),                        # "" requires no value, as Go
    (b' {"a" : 1} ', "a", None, b' {"a" : 1} '),                  # relayed byte for byte
    (b'["a"]', "a", None, NOT_JSON),                               # JSON, not an object
    (b'"a"', "a", None, NOT_JSON),
    (b'a', "a", None, NOT_JSON),
    (b'', "a", None, NOT_JSON),
    (b'{"a":1}{}', "a", None, NOT_JSON),
    (b'{"a":NaN}', "a", None, NOT_JSON),                          # not JSON to Go either
    (b'{"a":1e400}', "a", None, NOT_JSON),                        # beyond float64
    (b'{"a":1' + b"0" * 400 + b"}", "a", None, NOT_JSON),
    (b'{"a":"\xff"}', "a", None, b'{"a":"\xff"}'),               # invalid UTF-8 is replaced
    (b'{"a":1,"a":2}', "a", "2", b'{"a":1,"a":2}'),               # the last duplicate counts
    (b"[" * 100_000, "a", None, NOT_JSON),
])
def test_required_field_and_value(body, field, value, result):
    assert JsonFilter(field, value)(body) == result


@pytest.mark.parametrize("body, whitelist, result", [
    (b'{"b":1,"a":2,"c":3}', ["b", "a"], b'{"a":2,"b":1}'),   # sorted, compact, as json.Marshal
    (b'{"a":1.0,"b":1.5,"c":-0.0}', ["a", "b", "c"], b'{"a":1,"b":1.5,"c":0}'),  # Go's int64
    (b'{"a":12345678901234567890}', ["a"], b'{"a":12345678901234567890}'),  # exact here
    (b'{"a":{"y":1,"x":[2,{"q":3,"p":4}]}}', ["a"], b'{"a":{"x":[2,{"p":4,"q":3}],"y":1}}'),
    (b'{"a":"\xc3\xa9\\u2713"}', ["a"], '{"a":"é✓"}'.encode()),
    (b'{"a":"\\ud800"}', ["a"], b'{"a":"\\ud800"}'),          # a lone surrogate stays escaped
    (b'{"a":1}', ["z"], b"{}"),                                # none of them: an empty object
    (b'{"a":1}', ["a", "a"], b'{"a":1}'),
    (b'[1]', ["a"], NOT_JSON),
])
def test_whitelist(body, whitelist, result):
    assert JsonFilter(whitelist=whitelist)(body) == result


def test_whitelist_after_the_required_value():
    keep = JsonFilter("kind", "click", ["n"])
    assert keep(b'{"kind":"click","n":3,"x":1}') == b'{"n":3}'
    assert keep(b'{"kind":"view","n":3}') is FILTERED


def test_a_value_without_a_field_is_refused():
    with pytest.raises(ValueError, match="--require-json-value needs --require-json-field"):
        JsonFilter(None, "x")


# ---- the lines it prints --------------------------------------------------------------------


def test_tally_lines():
    tally = Tally()
    assert tally.line() == "relayed 0, filtered out 0, requeued 0"
    tally.add_relayed(1234)
    tally.filtered, tally.not_json, tally.requeued, tally.oversized = 7, 2, 5, 3
    assert tally.line() == ("relayed 1234, filtered out 7 (2 not JSON objects), requeued 5 "
                            "(3 too large for the destination)")
    tally.given_up = 1
    assert tally.line().endswith(", given up 1 (max_attempts)")
    assert tally.progress(1500.4, 17) == ("1,234 relayed (1,500/s), 7 filtered out, 5 requeued, "
                                          "17 held")


def test_status_every_n_relayed():
    lines = []
    tally = Tally(100, lines.append)
    for count in (60, 60, 30, 300, 5):
        tally.add_relayed(count)
    # at 120 (crossed 100), 150 no, 450 (crossed 200, 300 and 400: one line), 455 no
    assert [line.split(",")[0] for line in lines] == ["relayed 120", "relayed 450"]


# ---- a destination topic, with a fake publisher ---------------------------------------------


class FakePublisher:
    """Takes bodies; the test answers them through the callbacks it was given."""

    def __init__(self, callbacks):
        self.on_acknowledged, self.on_given_up, self.on_skipped = callbacks
        self.bodies = []
        self.stopped = False
        self.closed = False
        self.report = SimpleNamespace(error=None)

    async def publish(self, body):
        self.bodies.append(body)
        return range(len(self.bodies), len(self.bodies) + 1)

    async def close(self):
        self.closed = True
        return self.report


class FakeNsqds:
    """``open()`` returns a new FakePublisher, or raises what ``failures`` holds next."""

    def __init__(self, *failures):
        self.failures = list(failures)
        self.publishers = []

    async def open(self, topic, *callbacks):
        if self.failures:
            raise self.failures.pop(0)
        self.publishers.append(FakePublisher(callbacks))
        return self.publishers[-1]


def make_lane(nsqds, lines=None):
    lines = [] if lines is None else lines
    fatal = []
    lane = DestinationTopic("dest", nsqds, Tally(), fatal.append,
                            lambda text: lines.append(("warning", text)),
                            lambda text: lines.append(("info", text)))
    return lane, fatal, lines


def run(coroutine):
    return asyncio.run(coroutine)


class TouchableMessage(FakeMessage):
    def __init__(self, n, body=None):
        super().__init__(n, body)
        self.touches = 0

    def touch(self):
        assert self.answer is None
        self.touches += 1


def test_finished_only_once_acknowledged_and_requeued_with_backoff_when_given_up():
    async def main():
        nsqds = FakeNsqds()
        lane, fatal, _ = make_lane(nsqds)
        messages = [FakeMessage(n) for n in range(1, 6)]
        for message in messages:
            await lane.relay(message, message.body)
        publisher = nsqds.publishers[0]
        assert publisher.bodies == [m.body for m in messages] and lane.held == 5
        assert all(m.answer is None for m in messages)  # nothing answered before nsqd did
        publisher.on_acknowledged(range(1, 3))
        publisher.on_given_up([3, 5])
        publisher.on_acknowledged([4])
        assert [m.answer for m in messages] == ["FIN", "FIN", ("REQ", -1, True), "FIN",
                                                ("REQ", -1, True)]
        assert (lane._tally.relayed, lane._tally.requeued, lane.held, fatal) == (3, 2, 0, [])

    run(main())


def test_too_large_for_the_destination_is_requeued_without_backoff_and_said_once():
    async def main():
        nsqds = FakeNsqds()
        lane, _, lines = make_lane(nsqds)
        messages = [FakeMessage(n, b"x" * 10) for n in range(1, 4)]
        for message in messages:
            await lane.relay(message, message.body)
        nsqds.publishers[0].on_skipped([1])
        nsqds.publishers[0].on_skipped([2, 3])
        assert [m.answer for m in messages] == [("REQ", -1, False)] * 3
        assert [level for level, _ in lines] == ["warning", "info", "info"]
        assert "(10 bytes) is larger than destination dest accepts: requeued" in lines[0][1]
        assert (lane._tally.requeued, lane._tally.oversized) == (3, 3)

    run(main())


def test_a_stopped_publisher_is_closed_and_the_next_message_opens_another():
    async def main():
        nsqds = FakeNsqds()
        lane, fatal, _ = make_lane(nsqds)
        first, second = FakeMessage(1), FakeMessage(2)
        await lane.relay(first, first.body)
        old = nsqds.publishers[0]
        old.stopped = True  # every nsqd unreachable for --retry-timeout
        old.on_given_up([1])
        assert first.answer == ("REQ", -1, True)
        await lane.relay(second, second.body)
        await asyncio.sleep(0)
        assert old.closed and len(nsqds.publishers) == 2
        assert nsqds.publishers[1].bodies == [second.body] and fatal == []
        nsqds.publishers[1].on_acknowledged([1])  # numbers start again with each publisher
        assert second.answer == "FIN"

    run(main())


def test_a_publisher_that_stops_as_it_opens_takes_nothing():
    class StoppingAtOnce(FakeNsqds):
        async def open(self, topic, *callbacks):
            publisher = await super().open(topic, *callbacks)

            def stop():  # before the message that opened it gets to it
                publisher.stopped = True
                publisher.on_given_up([])

            asyncio.get_running_loop().call_soon(stop)
            return publisher

    async def main():
        nsqds = StoppingAtOnce()
        lane, fatal, _ = make_lane(nsqds)
        message = FakeMessage(1)
        await lane.relay(message, message.body)
        await asyncio.sleep(0)
        publisher = nsqds.publishers[0]
        assert message.answer == ("REQ", -1, True) and publisher.bodies == []
        assert publisher.closed and lane.current is None and fatal == []

    run(main())


def test_while_the_destination_is_down_messages_are_requeued_with_backoff(monkeypatch):
    async def main():
        nsqds = FakeNsqds(DestinationDown("connection refused"))
        lane, fatal, lines = make_lane(nsqds)
        messages = [FakeMessage(n) for n in range(1, 4)]
        for message in messages:
            await lane.relay(message, message.body)
        # one attempt: the other messages are requeued without trying again at once
        assert [m.answer for m in messages] == [("REQ", -1, True)] * 3
        assert nsqds.publishers == [] and fatal == []
        assert lines == [("warning", "destination dest: connection refused; messages are "
                                     "requeued on the source until it is back")]
        monkeypatch.setattr(destination_module, "REOPEN_INTERVAL", 0.0)
        lane._next_attempt = 0.0
        later = FakeMessage(4)
        await lane.relay(later, later.body)
        assert nsqds.publishers[0].bodies == [later.body]
        assert lines[-1] == ("warning", "destination dest: publishing again")

    run(main())


@pytest.mark.parametrize("error", [ToolError("destination: certificate verify failed"),
                                   ValueError("a bug")])
def test_an_error_no_retry_fixes_is_fatal_and_the_message_requeued(error):
    async def main():
        lane, fatal, _ = make_lane(FakeNsqds(error))
        message = FakeMessage(1)
        await lane.relay(message, message.body)
        assert fatal == [error] and message.answer == ("REQ", -1, True)

    run(main())


def test_a_destination_refusing_the_topic_is_fatal():
    from nsqcli.lib.protocol.errors import NSQError
    from nsqcli.lib.publisher import NsqdRefusedError

    async def main():
        nsqds = FakeNsqds()
        lane, fatal, _ = make_lane(nsqds)
        message = FakeMessage(1)
        await lane.relay(message, message.body)
        publisher = nsqds.publishers[0]
        publisher.stopped = True
        publisher.report.error = NsqdRefusedError("127.0.0.1:4150", NSQError(
            "E_UNAUTHORIZED", "AUTH failed"), "dest")
        publisher.on_given_up([1])
        assert fatal == [publisher.report.error] and message.answer == ("REQ", -1, True)

    run(main())


def test_held_messages_are_touched_within_two_rounds():
    async def main():
        nsqds = FakeNsqds()
        lane, _, _ = make_lane(nsqds)
        early, late = TouchableMessage(1), TouchableMessage(2)
        await lane.relay(early, early.body)
        assert lane.touch_held() == 0  # handed in since the last round (there was none)
        await lane.relay(late, late.body)
        assert lane.touch_held() == 1 and (early.touches, late.touches) == (1, 0)
        nsqds.publishers[0].on_acknowledged([1])
        assert lane.touch_held() == 1 and late.touches == 1  # answered ones are not touched

    run(main())


def test_drain_closes_the_publisher_and_opens_no_other():
    async def main():
        nsqds = FakeNsqds()
        lane, _, _ = make_lane(nsqds)
        first = FakeMessage(1)
        await lane.relay(first, first.body)
        await lane.drain()
        assert nsqds.publishers[0].closed
        late = FakeMessage(2)
        await lane.relay(late, late.body)  # still on its way when the drain began
        assert late.answer == ("REQ", -1, True) and len(nsqds.publishers) == 1

    run(main())
