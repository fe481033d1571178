"""nsq-stat on a terminal: one table redrawn in place after every poll (rich's Live).

The table fits 80 columns: numbers are compact (``12.3k``, ``4.5M``), the topic or channel name
gives way first (cut with an ellipsis). A topic's row is bold with its channels indented below;
the depth carries the trend since the previous poll (red ``↑`` rising, green ``↓`` falling); a
paused topic or channel says ``paused`` in yellow; nsqds and nsqlookupds that do not answer are
listed under the table with the reason.
"""

from __future__ import annotations

import time
from typing import IO, Any, Callable

from nsqcli.stat.model import Report, Row
from nsqcli.stat.plain import paused_text

_UNKNOWN = "—"
_ARROWS = {"rising": ("↑", "red"), "falling": ("↓", "green")}


def compact(value: float | None, decimals_below: int = 0) -> str:
    """``value`` in at most 5 characters: 9999, 12.3k, 123k, 4.5M, 1.2G; ``—`` when unknown."""
    if value is None:
        return _UNKNOWN
    if value < decimals_below and value != int(value):
        return f"{value:.1f}"
    if value < 10_000:
        return str(int(round(value)))
    for unit, size in (("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)):
        scaled = value / size
        if scaled < 99.95:
            return f"{scaled:.1f}{unit}"
        if scaled < 999.5 or unit == "T":
            return f"{scaled:.0f}{unit}"
    return str(int(value))  # unreachable: T covers the rest


def _fit(text: str, width: int) -> str:
    """``text`` in ``width`` characters, cut in the middle (``orders-…-eu``): names that share
    a prefix stay apart."""
    if len(text) <= width:
        return text
    if width < 3:
        return text[:width]
    tail = (width - 1) // 2
    return text[:width - 1 - tail] + "…" + text[len(text) - tail:]


_SHORT_PAUSED = " P"  # the paused marker when " paused" would leave the name too little room


def _name(row: Row, per_nsqd: bool, width: int, under_topic: bool = True) -> Any:
    """The name cell in ``width`` columns: a bold topic, or a channel (indented under its
    topic's row, else ``topic/channel``); then the nsqd (--per-nsqd) and the paused marker,
    which the name gives way to."""
    from rich.text import Text

    if row.channel is None:
        label, indent = row.topic, ""
    else:
        label, indent = (row.channel, "  ") if under_topic else (f"{row.topic}/{row.channel}", "")
    if per_nsqd and row.nsqd:
        label += f" @{row.nsqd}"
    marker = ""
    if row.paused_on:
        paused = paused_text(row)
        marker = " paused" + ("" if paused == "yes" else f" {paused}")
        if len(indent + label + marker) > width and width - len(indent + marker) < 8:
            marker = _SHORT_PAUSED
    label = _fit(label, max(1, width - len(indent) - len(marker)))
    text = Text(indent + label, style="bold" if row.channel is None else "")
    text.append(marker, style="bold yellow")
    return text


def _depth(row: Row) -> Any:
    from rich.text import Text

    arrow, style = _ARROWS.get(row.trend or "", (" ", ""))
    return Text(compact(row.counts.depth)).append(arrow, style=style)


def _counter(value: int | None) -> str:
    return "" if value is None else compact(value)  # None: a topic has no such counter


#: (header, width, cell of a row) of the number columns: compact numbers take 5 characters
_COLUMNS: tuple[tuple[str, int, Callable[[Row], Any]], ...] = (
    ("depth", 6, _depth),
    ("mem", 5, lambda r: compact(r.counts.memory_depth)),
    ("disk", 5, lambda r: compact(r.counts.backend_depth)),
    ("inflt", 5, lambda r: _counter(r.counts.in_flight)),
    ("def", 5, lambda r: _counter(r.counts.deferred)),
    ("req", 5, lambda r: _counter(r.counts.requeued)),
    ("t-o", 5, lambda r: _counter(r.counts.timed_out)),
    ("msgs", 5, lambda r: compact(r.counts.messages)),
    ("in/s", 5, lambda r: compact(r.rate_in, 10)),
    ("out/s", 5, lambda r: compact(r.rate_out, 10)),
    ("cli", 5, lambda r: _counter(r.counts.clients)),
)
#: below 80 columns, these go first (in this order), so that names keep 12 characters
_DROPPED_FIRST = ("t-o", "def", "req", "disk", "mem", "cli", "msgs")
_NAME_MIN = 12


def _layout(report: Report, per_nsqd: bool, width: int) -> tuple[int, list[tuple[str, int, Any]]]:
    """(width of the names, the number columns shown) for a terminal ``width`` wide."""
    columns = list(_COLUMNS)
    longest = max((len(_name(row, per_nsqd, 1000, False)) for row in report.rows), default=8)

    def left() -> int:  # one space between columns
        return width - sum(column[1] for column in columns) - len(columns)

    for header in _DROPPED_FIRST:
        if left() >= min(longest, _NAME_MIN):
            break
        columns = [column for column in columns if column[0] != header]
    return max(8, min(longest, left())), columns


def table(report: Report, interval: float, per_nsqd: bool = False, empty: str = "",
          width: int = 80) -> Any:
    """The renderable of one poll in ``width`` columns: a title line, the table, the nsqds
    that are down."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    up = sum(1 for _, error in report.nsqds if error is None)
    clock = time.strftime("%H:%M:%S", time.localtime(report.time))
    title = Text.assemble(("nsq-stat", "bold"), f"  {clock}  every {interval:g}s  ",
                          f"{up}/{len(report.nsqds)} nsqd{'s' if len(report.nsqds) != 1 else ''} up")
    grid = Table(box=None, pad_edge=False, padding=(0, 1), collapse_padding=True,
                 show_edge=False, header_style="bold")
    # the numbers keep their width; the name gives way (an ellipsis) on a narrow terminal
    name_width, columns = _layout(report, per_nsqd, width)
    grid.add_column("topic/channel", no_wrap=True, overflow="ellipsis", width=name_width)
    for header, column_width, _ in columns:
        grid.add_column(header, justify="right", no_wrap=True, min_width=column_width)
    names = []
    for index, row in enumerate(report.rows):
        under_topic = index > 0 and report.rows[index - 1].topic == row.topic
        names.append(_name(row, per_nsqd, name_width, under_topic))
        grid.add_row(names[-1], *(cell(row) for _, _, cell in columns))
    parts: list[Any] = [title, grid]
    if not report.rows:
        parts.append(Text(empty or "no topics", style="dim"))
    if any(name.plain.endswith(_SHORT_PAUSED) for name in names):
        parts.append(Text.assemble(("P", "bold yellow"), " paused"))
    for daemon, states in (("nsqd", report.nsqds), ("nsqlookupd", report.lookupds)):
        for address, error in states:
            if error is not None:
                parts.append(Text.assemble((f"{daemon} {address} down", "bold red"), f": {error}"))
    return Group(*parts)


class _Sized:
    """One poll's table, laid out for the terminal's width when it is drawn."""

    def __init__(self, report: Report, view: "LiveView") -> None:
        self.report = report
        self.view = view

    def __rich_console__(self, console: Any, options: Any) -> Any:
        view = self.view
        yield table(self.report, view.interval, view.per_nsqd, view.empty, options.max_width)


class LiveView:
    """A table on the terminal, redrawn in place after each poll; the last one stays at exit."""

    def __init__(self, stream: IO[str], interval: float, per_nsqd: bool = False,
                 empty: str = "") -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        self.interval = interval
        self.per_nsqd = per_nsqd
        self.empty = empty
        self._live = Live(Text("nsq-stat: polling…", style="dim"), console=Console(file=stream),
                          auto_refresh=False, transient=False, redirect_stdout=False,
                          redirect_stderr=False, vertical_overflow="ellipsis")
        self._live.start(refresh=True)

    def show(self, report: Report) -> None:
        self._live.update(_Sized(report, self), refresh=True)

    def close(self) -> None:
        self._live.stop()
