"""nsq-stat's outputs without a network: plain rows, JSON lines and the live table's layout."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from nsqcli.stat.live import compact, table
from nsqcli.stat.model import Answer, Counts, Report, Tracker
from nsqcli.stat.plain import PLAIN_COLUMNS, PlainView, StateNotices, plain_header, report_json

ROW_KEYS = {"topic", "channel", "nsqd", "depth", "memory_depth", "backend_depth", "in_flight",
            "deferred", "requeued", "timed_out", "messages", "clients", "paused", "paused_on",
            "nsqds", "rate_in", "rate_out", "depth_change", "trend"}


def two_polls(per_nsqd: bool = False) -> tuple[Report, Report]:
    tracker = Tracker(per_nsqd)
    first = {("events", None): Counts(0, 0, 100),
             ("events", "audit"): Counts(40, 10, 100, True, 5, 1, 2, 3, 4),
             ("orders", "billing"): Counts(7, 0, 7, False, 0, 0, 0, 0, 0)}
    second = {("events", None): Counts(0, 0, 120),
              ("events", "audit"): Counts(50, 10, 120, True, 5, 1, 2, 3, 4),
              ("orders", "billing"): Counts(7, 0, 7, False, 0, 0, 0, 0, 0)}
    return (tracker.report(1, 1_700_000_000.0, [Answer("127.0.0.1:4151", 0.0, first),
                                                 Answer("127.0.0.1:4999", 0.0, error="refused")]),
            tracker.report(2, 1_700_000_002.5, [Answer("127.0.0.1:4151", 2.0, second),
                                                 Answer("127.0.0.1:4999", 2.0, error="refused")]))


def test_plain_rows_have_a_header_then_one_line_per_row_and_poll():
    out = io.BytesIO()
    view = PlainView(out)
    for report in two_polls():
        view.show(report)
    lines = out.getvalue().decode().splitlines()
    assert lines[0].split() == ["time"] + [header for header, *_ in PLAIN_COLUMNS]
    assert len(lines) == 1 + 2 * 3  # the header once; 3 rows per poll
    fields = [line.split() for line in lines[1:]]
    assert all(len(f) == len(PLAIN_COLUMNS) + 1 for f in fields)
    first_audit = dict(zip(lines[0].split(), fields[0]))
    assert first_audit["topic"] == "events" and first_audit["channel"] == "(topic)"
    audit = dict(zip(lines[0].split(), fields[4]))  # second poll: events, events/audit, orders
    assert (audit["channel"], audit["nsqd"], audit["depth"], audit["mem"], audit["disk"]) == \
        ("audit", "(all)", "50", "40", "10")
    assert (audit["inflt"], audit["def"], audit["req"], audit["t-o"], audit["clients"]) == \
        ("5", "1", "2", "3", "4")
    assert (audit["msgs"], audit["in/s"], audit["out/s"], audit["paused"], audit["change"]) == \
        ("120", "10.0", "5.0", "yes", "+10")
    first = dict(zip(lines[0].split(), fields[1]))
    assert (first["in/s"], first["out/s"], first["change"]) == ("-", "-", "-")
    topic_row = dict(zip(lines[0].split(), fields[3]))
    assert (topic_row["inflt"], topic_row["clients"], topic_row["in/s"]) == ("-", "-", "10.0")


def test_json_lines_follow_the_documented_schema():
    out = io.BytesIO()
    view = PlainView(out, as_json=True)
    for report in two_polls():
        view.show(report)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert set(second) == {"poll", "time", "nsqds", "lookupds", "rows"}
    assert second["poll"] == 2 and second["time"] == "2023-11-14T22:13:22.500Z"
    assert second["nsqds"] == [{"address": "127.0.0.1:4151", "error": None},
                               {"address": "127.0.0.1:4999", "error": "refused"}]
    assert all(set(row) == ROW_KEYS for row in first["rows"] + second["rows"])
    audit = next(r for r in second["rows"] if r["channel"] == "audit")
    assert audit == {"topic": "events", "channel": "audit", "nsqd": None, "depth": 50,
                     "memory_depth": 40, "backend_depth": 10, "in_flight": 5, "deferred": 1,
                     "requeued": 2, "timed_out": 3, "messages": 120, "clients": 4, "paused": True,
                     "paused_on": 1, "nsqds": 1, "rate_in": 10.0, "rate_out": 5.0,
                     "depth_change": 10, "trend": "rising"}
    topic = next(r for r in first["rows"] if r["channel"] is None)
    assert topic["in_flight"] is None and topic["clients"] is None and topic["rate_in"] is None
    assert report_json(two_polls(per_nsqd=True)[1])["rows"][0]["nsqd"] == "127.0.0.1:4151"


def test_notices_say_once_that_an_nsqd_is_down_and_once_that_it_is_back():
    said: list[str] = []
    notices = StateNotices(said.append, said.append)
    down = Report(1, 0.0, [], [("n1", "refused")], [("l1", "timeout")])
    up = Report(2, 0.0, [], [("n1", None)], [("l1", None)])
    for report in (down, down, up, up, down):
        notices.update(report)
    assert said == ["nsqlookupd l1 is down: timeout", "nsqd n1 is down: refused",
                    "nsqlookupd l1 answers again", "nsqd n1 answers again",
                    "nsqlookupd l1 is down: timeout", "nsqd n1 is down: refused"]


@pytest.mark.parametrize("value, text", [
    (None, "—"), (0, "0"), (9999, "9999"), (10_000, "10.0k"), (99_949, "99.9k"),
    (99_950, "100k"), (999_499, "999k"), (999_500, "1.0M"), (12_345_678, "12.3M"),
    (5 * 10**12, "5.0T"), (10**16, "10000T"),
])
def test_compact_numbers(value, text):
    assert compact(value) == text


def test_compact_rates_keep_a_decimal_below_ten():
    assert (compact(2.54, 10), compact(0.0, 10), compact(12.6, 10)) == ("2.5", "0", "13")


def render(report: Report, width: int, per_nsqd: bool = False) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(table(report, 2.0, per_nsqd, width=width))
    return console.file.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 60, 120])
def test_live_table_fits_the_terminal(width):
    _, report = two_polls()
    lines = render(report, width)
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    text = "\n".join(lines)
    assert "1/2 nsqds up" in lines[0]
    assert "nsqd 127.0.0.1:4999 down: refused" in text
    header = lines[1].split()
    assert header[0] == "topic/channel" and "depth" in header and "in/s" in header
    if width >= 80:
        assert header[1:] == ["depth", "mem", "disk", "inflt", "def", "req", "t-o", "msgs",
                              "in/s", "out/s", "cli"]


def test_live_table_marks_trend_and_pause():
    _, report = two_polls()
    lines = render(report, 100)
    audit = next(line for line in lines if "audit" in line)
    assert "audit paused" in audit and "50↑" in audit  # depth 40 -> 50: rising
    billing = next(line for line in lines if "billing" in line)
    assert "paused" not in billing and " 7 " in billing and "↑" not in billing
    # without its topic's row (orders has none here) a channel is named topic/channel
    assert billing.startswith("orders/billing ")
    # 80 columns leave the name little room: a short marker, explained under the table
    narrow = render(report, 80)
    assert any(line.startswith("  audit P ") for line in narrow) and "P paused" in narrow


def test_long_names_are_cut_in_the_middle_on_80_columns():
    answers = [Answer("a", 0.0, {(f"orders-with-a-long-name-{region}", None): Counts(0, 0, 0)
                                 for region in ("eu", "us")})]
    lines = render(Tracker().report(1, 0.0, answers), 80)
    names = [line.split()[0] for line in lines[2:4]]
    assert names[0] != names[1] and all(n.startswith("orders") and "…" in n for n in names)
    assert {n[-2:] for n in names} == {"eu", "us"}


def test_live_table_without_rows_says_so():
    report = Tracker().report(1, 0.0, [Answer("a", 0.0, {})])
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(table(report, 2.0, empty="no topic nope on the nsqds that answered"))
    assert "no topic nope" in console.file.getvalue()


def test_plain_header_is_one_line():
    assert plain_header().count("\n") == 1
