"""The workloads of issue 7 and the pynsq baselines, each measured in its own client process.

A workload is a function ``(ctx, n, size) -> Sample``; it prepares the broker, runs one measured
process, verifies the counts and cleans up. A workload whose tool or library is missing raises
:class:`Unavailable`; a run whose counts do not add up raises :class:`VerificationFailed`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..brokers import Broker, BrokerUnavailable, start_broker
from ..measure import ProcessRun


class Unavailable(Exception):
    """The tool or library this workload measures is not there (yet)."""


class VerificationFailed(Exception):
    """The run finished but its counts are wrong: a fast wrong answer is a failed benchmark."""


@dataclass
class Sample:
    """One measured repeat. ``value`` is msgs/s, or milliseconds for latency workloads."""

    value: float
    cpu: float
    peak_rss_kib: int
    extra: dict = field(default_factory=dict)


@dataclass
class Context:
    broker: Broker
    workdir: Path
    window: int = 1000
    max_in_flight: int = 2500
    rss_counts: tuple[int, ...] = (100_000, 1_000_000)
    nsq_bin: Path | None = None  # where Go's apps are (next to the real nsqd)
    nsqd_options: dict = field(default_factory=dict)  # --nsqd-option, for every real nsqd
    counter: int = 0
    _tool_checks: dict = field(default_factory=dict)

    def topic(self, workload: str) -> str:
        """A fresh topic per repeat, so the broker's counters start at zero."""
        self.counter += 1
        return f"bench_{workload.replace('-', '_')}_{os.getpid()}_{self.counter}"

    def second_broker(self) -> Broker:
        """Another broker of the kind measured (started as that one was), or Unavailable."""
        if self.broker.kind == "external":
            raise Unavailable("needs a second nsqd the harness starts (--broker real, embedded "
                              "or peer)")
        try:
            return start_broker(self.broker.kind, self.nsq_bin, self.nsqd_options)
        except BrokerUnavailable as exc:
            raise Unavailable(f"no second {self.broker.label}: {exc}") from None

    def tool(self, name: str, *flags: str) -> list[str]:
        """The console script of a tool, or Unavailable if it is missing or lacks ``flags``."""
        key = (name, flags)
        if key not in self._tool_checks:
            self._tool_checks[key] = _check_tool(name, flags)
        argv, reason = self._tool_checks[key]
        if reason:
            raise Unavailable(reason)
        return list(argv)

    def go_app(self, name: str) -> list[str]:
        """Go's app ``name`` (that of a ``go-*`` workload) from ``nsq_bin``, or Unavailable."""
        if self.nsq_bin is None:
            raise Unavailable(f"Go's {name}: no NSQ binaries (give --nsq-bin DIR)")
        path = self.nsq_bin / name
        if not os.access(path, os.X_OK):
            raise Unavailable(f"Go's {name} is not in {self.nsq_bin}")
        return [str(path)]


def _check_tool(name: str, flags: tuple[str, ...]) -> tuple[list[str], str]:
    script = Path(sys.executable).parent / name
    argv = [str(script)] if script.exists() else []
    if not argv:
        return [], f"{name} is not installed"
    try:
        result = subprocess.run(argv + ["--help"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"{name} --help failed: {exc}"
    text = result.stdout.decode(errors="replace")
    if result.returncode != 0 or "not yet implemented" in text + result.stderr.decode(errors="replace"):
        return [], f"{name} is not implemented yet"
    missing = [flag for flag in flags if flag not in text]
    if missing:
        return [], f"{name} has no {', '.join(missing)}"
    return argv, ""


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def timeout_for(n: int) -> float:
    """How long a run of ``n`` messages may take before it is killed (>= 2,000 msg/s)."""
    return 60.0 + n / 2000


def check_exit(run: ProcessRun, what: str, ok_codes: tuple[int, ...] = (0,)) -> None:
    if run.timed_out:
        raise VerificationFailed(f"{what} timed out after {run.wall:.0f} s and was killed")
    if run.returncode not in ok_codes:
        tail = (run.stderr.strip().splitlines() or ["no stderr"])[-1]
        raise VerificationFailed(f"{what} exited {run.returncode}: {tail[:200]}")


def verify_published(broker: Broker, topic: str, n: int) -> None:
    """Every message the client reported as published was received by the broker, no more."""
    def count() -> int:
        stats = broker.topic_stats(topic)
        return -1 if stats is None else int(stats.get("message_count", -1))

    wait_for(lambda: count() >= n, timeout=5)
    got = count()
    if got != n:
        raise VerificationFailed(f"broker counted {got} messages on {topic}, expected {n}")


def verify_drained(broker: Broker, topic: str, channel: str, n: int, timeout: float = 10.0) -> None:
    """Every one of the ``n`` messages on the channel was FINed, exactly once."""
    def settled() -> bool:
        chan = broker.channel_stats(topic, channel) or {}
        return chan.get("depth") == 0 and chan.get("in_flight_count") == 0

    wait_for(settled, timeout=timeout)
    chan = broker.channel_stats(topic, channel)
    if chan is None:
        raise VerificationFailed(f"channel {topic}/{channel} is gone")
    problems = []
    for key, want in (("message_count", n), ("depth", 0), ("in_flight_count", 0),
                      ("deferred_count", 0), ("requeue_count", 0), ("timeout_count", 0)):
        if chan.get(key) != want:
            problems.append(f"{key}={chan.get(key)} (want {want})")
    # the measurement peer also counts FINs and FINs of ids not in flight (duplicates)
    for key, want in (("finish_count", n), ("fin_failed_count", 0)):
        if key in chan and chan[key] != want:
            problems.append(f"{key}={chan[key]} (want {want})")
    if problems:
        raise VerificationFailed(f"{topic}/{channel}: " + ", ".join(problems))


def verify_acknowledged(brokers: list[Broker], topic: str, channel: str, least: int, total: int,
                        most: int) -> None:
    """The channel of ``topic`` on ``brokers`` held ``total`` messages; between ``least`` and
    ``most`` of them were FINed (``most``: what the client handled; a client that closes without
    draining may leave its last one in flight), none requeued or timed out."""
    stats = [broker.channel_stats(topic, channel) or {} for broker in brokers]
    received = sum(chan.get("message_count", 0) for chan in stats)
    left = sum(chan.get("depth", 0) + chan.get("in_flight_count", 0) for chan in stats)
    problems = [] if received == total else [f"message_count={received} (want {total})"]
    if not least <= total - left <= most:
        problems.append(f"{total - left} acknowledged (want {least}..{most})")
    for key in ("requeue_count", "timeout_count", "fin_failed_count"):
        if any(chan.get(key, 0) for chan in stats):
            problems.append(f"{key}={[chan.get(key) for chan in stats]} (want 0)")
    if problems:
        raise VerificationFailed(f"{topic}/{channel} on {len(brokers)} brokers: " + ", ".join(problems))


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")
