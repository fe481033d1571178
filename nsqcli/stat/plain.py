"""nsq-stat's output for scripts: plain rows or one JSON object per poll, and the stderr lines
that say when an nsqd or nsqlookupd stops (or starts again) answering.

Plain: a header line, then per poll one line per row, columns separated by spaces in a fixed
order (:data:`PLAIN_COLUMNS`); a value never contains a space, and ``-`` is "not known" (a
rate before the second poll, a counter a topic does not have). JSON: :func:`report_json`.
"""

from __future__ import annotations

import json
import time
from typing import IO, Any, Callable

from nsqcli.stat.model import Report, Row

TOPIC_ITSELF = "(topic)"  # the channel column of a topic's own row (not a channel name)
ALL_NSQDS = "(all)"  # the nsqd column of a row summed over nsqds


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _change(value: int | None) -> str:
    return "-" if value is None else f"{value:+d}" if value else "0"


def paused_text(row: Row) -> str:
    """``yes``, ``no``, or ``k/n`` when paused on k of the n nsqds that hold it."""
    if not row.paused_on:
        return "no"
    return "yes" if row.paused_on == row.nsqds else f"{row.paused_on}/{row.nsqds}"


#: (header, width, right-aligned, value of a row); the header names are documented in --help
PLAIN_COLUMNS: tuple[tuple[str, int, bool, Callable[[Row], str]], ...] = (
    ("topic", 16, False, lambda r: r.topic),
    ("channel", 16, False, lambda r: r.channel or TOPIC_ITSELF),
    ("nsqd", 15, False, lambda r: r.nsqd or ALL_NSQDS),
    ("depth", 7, True, lambda r: _number(r.counts.depth)),
    ("mem", 7, True, lambda r: _number(r.counts.memory_depth)),
    ("disk", 7, True, lambda r: _number(r.counts.backend_depth)),
    ("inflt", 5, True, lambda r: _number(r.counts.in_flight)),
    ("def", 5, True, lambda r: _number(r.counts.deferred)),
    ("req", 7, True, lambda r: _number(r.counts.requeued)),
    ("t-o", 7, True, lambda r: _number(r.counts.timed_out)),
    ("msgs", 10, True, lambda r: _number(r.counts.messages)),
    ("in/s", 8, True, lambda r: _rate(r.rate_in)),
    ("out/s", 8, True, lambda r: _rate(r.rate_out)),
    ("clients", 7, True, lambda r: _number(r.counts.clients)),
    ("paused", 6, True, paused_text),
    ("change", 7, True, lambda r: _change(r.depth_change)),
)


def _line(time_text: str, cells: list[str]) -> str:
    parts = [f"{time_text:<8}"]
    for (_, width, right, _), cell in zip(PLAIN_COLUMNS, cells):
        parts.append(f"{cell:>{width}}" if right else f"{cell:<{width}}")
    return " ".join(parts).rstrip() + "\n"


def plain_header() -> str:
    return _line("time", [header for header, *_ in PLAIN_COLUMNS])


def plain_rows(report: Report) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(report.time))
    return "".join(_line(stamp, [value(row) for *_, value in PLAIN_COLUMNS]) for row in report.rows)


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}Z"


def row_json(row: Row) -> dict[str, Any]:
    counts = row.counts
    return {
        "topic": row.topic, "channel": row.channel, "nsqd": row.nsqd,
        "depth": counts.depth, "memory_depth": counts.memory_depth,
        "backend_depth": counts.backend_depth, "in_flight": counts.in_flight,
        "deferred": counts.deferred, "requeued": counts.requeued,
        "timed_out": counts.timed_out, "messages": counts.messages, "clients": counts.clients,
        "paused": counts.paused, "paused_on": row.paused_on, "nsqds": row.nsqds,
        "rate_in": None if row.rate_in is None else round(row.rate_in, 3),
        "rate_out": None if row.rate_out is None else round(row.rate_out, 3),
        "depth_change": row.depth_change, "trend": row.trend,
    }


def report_json(report: Report) -> dict[str, Any]:
    """One poll as the JSON object that ``--json`` prints (the schema is in --help)."""
    return {
        "poll": report.poll,
        "time": _iso(report.time),
        "nsqds": [{"address": address, "error": error} for address, error in report.nsqds],
        "lookupds": [{"address": address, "error": error} for address, error in report.lookupds],
        "rows": [row_json(row) for row in report.rows],
    }


class PlainView:
    """Writes each poll to a binary stream as plain rows (after one header) or JSON lines."""

    def __init__(self, out: IO[bytes], as_json: bool = False) -> None:
        self._out = out
        self._as_json = as_json
        self._started = False

    def show(self, report: Report) -> None:
        if self._as_json:
            text = json.dumps(report_json(report), separators=(",", ":")) + "\n"
        else:
            text = plain_rows(report)
            if not self._started:
                text = plain_header() + text
        self._started = True
        self._out.write(text.encode("utf-8"))
        self._out.flush()

    def close(self) -> None:
        pass


class StateNotices:
    """One stderr line when an nsqd or nsqlookupd stops answering, one when it answers again
    (the plain and JSON outputs keep stdout for data)."""

    def __init__(self, warning: Callable[[str], None], notice: Callable[[str], None]) -> None:
        self._warning = warning
        self._notice = notice
        self._failing: dict[str, str] = {}

    def update(self, report: Report) -> None:
        for daemon, states in (("nsqlookupd", report.lookupds), ("nsqd", report.nsqds)):
            for address, error in states:
                name = f"{daemon} {address}"
                if error is not None and name not in self._failing:
                    self._warning(f"{name} is down: {error}")
                elif error is None and self._failing.pop(name, None) is not None:
                    self._notice(f"{name} answers again")
                if error is not None:
                    self._failing[name] = error
