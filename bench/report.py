"""The results table (markdown): medians with min-max, CPU, peak RSS, ratio against pynsq."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .catalog import Workload
from .workloads import Sample


@dataclass
class Result:
    workload: Workload
    broker: str
    n: int
    size: int
    samples: list[Sample] = field(default_factory=list)
    status: str = "ok"  # "ok", "unavailable: ...", "FAILED: ...", "error: ..."

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(s.value for s in self.samples)


def _fmt(value: float, unit: str) -> str:
    if unit == "msg/s":
        if value < 1000:  # the few-RDY row: tens of msg/s
            return f"{value:.1f}"
        return f"{value / 1000:,.1f}k" if value < 10_000_000 else f"{value:,.0f}"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:.1f} MiB"


def _value_cell(result: Result) -> str:
    unit = result.workload.unit
    values = [s.value for s in result.samples]
    text = _fmt(result.median, unit)
    if unit == "msg/s":
        text += " msg/s"
    if len(values) > 1:
        text += f" ({_fmt(min(values), unit)}-{_fmt(max(values), unit)})"
    extra = result.samples[-1].extra
    if "rss_by_n" in extra:
        text = " -> ".join(f"{kib / 1024:.1f}" for kib in extra["rss_by_n"].values()) + " MiB"
        text += " at " + " -> ".join(f"{n // 1000}k" for n in extra["rss_by_n"])
    drains = [s.extra["drain_s"] for s in result.samples if "drain_s" in s.extra]
    if drains:
        text += f"; last write -> acked {max(drains):.2f} s (max)"
    return text


def _ratio_cell(result: Result, baseline: Result | None) -> str:
    if baseline is None or not baseline.ok:
        return "—"
    if result.workload.higher_is_better:
        return f"{result.median / baseline.median:.1f}x"
    return f"{baseline.median / result.median:.1f}x faster"


def _target_cell(result: Result) -> str:
    workload = result.workload
    if workload.target is None:
        return ""
    comparison = ">=" if workload.higher_is_better else "<="
    verdict = workload.meets(result.median)
    target = _fmt(workload.target, workload.unit)
    if verdict:
        return f"{comparison} {target}: met"
    if workload.higher_is_better:
        short = f"{result.median / workload.target:.0%} of it"
    else:
        short = f"+{_fmt(result.median - workload.target, workload.unit)}"
    return f"{comparison} {target}: NOT met ({short})"


def table(results: list[Result]) -> str:
    """One markdown table for every (broker, workload) result."""
    by_key = {(r.broker, r.workload.name): r for r in results}
    lines = [
        "| broker | workload | N x size | result: median (min-max) | CPU s | peak RSS | vs pynsq "
        "| target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        workload = result.workload
        size = "1 msg (x10)" if workload.unit == "ms" else f"{result.n:,} x {result.size} B"
        if workload.unit == "MiB":
            size = f"{result.size} B"
        if not result.ok:
            lines.append(f"| {result.broker} | {workload.name} | {size} | {result.status} "
                         f"| | | | |")
            continue
        cpu = statistics.median(s.cpu for s in result.samples)
        cpu_cell = f"{cpu:.2f}"
        if workload.unit == "msg/s":
            cpu_cell += f" ({cpu * 1e6 / result.n:.1f} µs/msg)"
        rss = max(s.peak_rss_kib for s in result.samples) / 1024
        baseline = by_key.get((result.broker, workload.baseline)) if workload.baseline else None
        lines.append(
            f"| {result.broker} | {workload.name} | {size} | {_value_cell(result)} | {cpu_cell} "
            f"| {rss:.1f} MiB | {_ratio_cell(result, baseline)} | {_target_cell(result)} |"
        )
    return "\n".join(lines)


def as_json(results: list[Result]) -> list[dict]:
    """The results as plain data (``--json FILE``): one entry per broker and workload."""
    rows = []
    for result in results:
        workload = result.workload
        row = {"broker": result.broker, "workload": workload.name, "n": result.n,
               "size": result.size, "unit": workload.unit, "status": result.status,
               "target": workload.target, "baseline": workload.baseline,
               "samples": [{"value": s.value, "cpu_s": s.cpu, "peak_rss_kib": s.peak_rss_kib,
                            **{k: v for k, v in s.extra.items() if k != "rss_by_n"},
                            **({"rss_by_n": {str(k): v for k, v in s.extra["rss_by_n"].items()}}
                               if "rss_by_n" in s.extra else {})}
                           for s in result.samples]}
        if result.ok:
            row["median"] = result.median
            row["target_met"] = workload.meets(result.median)
        rows.append(row)
    return rows


def legend(results: list[Result]) -> str:
    seen = []
    for result in results:
        if result.workload not in seen:
            seen.append(result.workload)
    return "\n".join(f"- **{w.name}**: {w.title}" for w in seen)
