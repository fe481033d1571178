"""Backoff policies, pure (no I/O; clock and random source injected).

* :class:`BackoffTimer` — pynsq's timer, kept importable with its exact curve (a *linear*
  accumulation despite its name: the Reader's (0, 128) gives 3.584 s after the first failure).
* Strategies a Reader can use (``backoff_strategy=``): :class:`ExponentialBackoff` (go-nsq's
  default, ``multiplier * 2**level``), :class:`FullJitterBackoff` (uniform in [0, exponential)),
  and :class:`TimerBackoff` (pynsq's curve through a BackoffTimer).
* :class:`BackoffWindow` — the Reader's backoff state machine: a failure starts a window in which
  no further result counts; when it ends one connection tests the waters with RDY 1; when the
  strategy's level decays to zero every connection gets its share back.
* :class:`ReconnectBackoff` — exponential delay with jitter for reconnecting to an nsqd.
"""

from __future__ import annotations

import enum
import random
import time
from decimal import Decimal
from typing import Callable, Protocol, Union, runtime_checkable

__all__ = [
    "BackoffTimer", "BackoffStrategy", "ExponentialBackoff", "FullJitterBackoff", "TimerBackoff",
    "BackoffAction", "BackoffWindow", "ReconnectBackoff", "make_strategy", "STRATEGIES",
]


def _number(value: object, what: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum:g}, got {value}")
    return float(value)


def _decimal(value: int | float | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class BackoffTimer:
    """pynsq's BackoffTimer: ``interval = min + short + long`` where each failure adds one short
    unit ``(max-min)*ratio/short_length`` and one long unit ``(max-min)*(1-ratio)/long_length``
    (each part capped), and each success removes one of each."""

    def __init__(
        self,
        min_interval: int | float | Decimal,
        max_interval: int | float | Decimal,
        ratio: float = 0.25,
        short_length: int = 10,
        long_length: int = 250,
    ) -> None:
        _number(min_interval, "min_interval")
        _number(max_interval, "max_interval")
        if max_interval < min_interval:
            raise ValueError(f"max_interval ({max_interval}) must be >= min_interval ({min_interval})")
        if not 0 <= _number(ratio, "ratio") <= 1:
            raise ValueError(f"ratio must be in [0, 1], got {ratio}")
        _number(short_length, "short_length", 1)
        _number(long_length, "long_length", 1)
        self.min_interval = _decimal(min_interval)
        self.max_interval = _decimal(max_interval)
        span = self.max_interval - self.min_interval
        self.max_short_timer = span * _decimal(ratio)
        self.max_long_timer = span * (1 - _decimal(ratio))
        self.short_unit = self.max_short_timer / _decimal(short_length)
        self.long_unit = self.max_long_timer / _decimal(long_length)
        self.short_interval = Decimal(0)
        self.long_interval = Decimal(0)
        self.interval = 0.0
        self.update_interval()

    def success(self) -> None:
        """Record a success: the interval shrinks by one unit (never below ``min_interval``)."""
        if self.interval == 0.0:
            return
        self.short_interval = max(self.short_interval - self.short_unit, Decimal(0))
        self.long_interval = max(self.long_interval - self.long_unit, Decimal(0))
        self.update_interval()

    def failure(self) -> None:
        """Record a failure: the interval grows by one unit (never above ``max_interval``)."""
        self.short_interval = min(self.short_interval + self.short_unit, self.max_short_timer)
        self.long_interval = min(self.long_interval + self.long_unit, self.max_long_timer)
        self.update_interval()

    def update_interval(self) -> None:
        self.interval = float(self.min_interval + self.short_interval + self.long_interval)

    def get_interval(self) -> float:
        return self.interval


@runtime_checkable
class BackoffStrategy(Protocol):
    """What the Reader needs from a backoff strategy."""

    def failure(self) -> None: ...

    def success(self) -> None: ...

    @property
    def in_backoff(self) -> bool: ...

    def interval(self) -> float:
        """Length in seconds of the backoff window for the current level."""
        ...


class ExponentialBackoff:
    """go-nsq's exponential strategy: level n waits ``multiplier * 2**n`` seconds. A failure raises
    the level only when the next level's window still fits under ``max_duration`` (as go-nsq: a
    100 s cap stops at 64 s windows, and a cap below ``2 * multiplier`` never backs off); a
    success lowers it. ``max_duration=0`` disables backoff."""

    def __init__(self, multiplier: float = 1.0, max_duration: float = 128.0) -> None:
        self.multiplier = _number(multiplier, "backoff multiplier")
        self.max_duration = _number(max_duration, "max_backoff_duration")
        self.level = 0

    @property
    def in_backoff(self) -> bool:
        return self.level > 0

    def _full_interval(self) -> float:
        if self.level == 0:
            return 0.0
        return min(self.multiplier * 2.0 ** self.level, self.max_duration)

    def interval(self) -> float:
        return self._full_interval()

    def failure(self) -> None:
        if self.max_duration <= 0 or self.multiplier <= 0:
            return
        if self.multiplier * 2.0 ** (self.level + 1) <= self.max_duration:
            self.level += 1

    def success(self) -> None:
        if self.level:
            self.level -= 1

    def reset(self) -> None:
        self.level = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} level={self.level} interval={self._full_interval():g}s>"


class FullJitterBackoff(ExponentialBackoff):
    """go-nsq's full_jitter strategy: a uniformly random window in [0, exponential interval)."""

    def __init__(
        self,
        multiplier: float = 1.0,
        max_duration: float = 128.0,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(multiplier, max_duration)
        self._rng = rng or random.Random()

    def interval(self) -> float:
        return self._rng.uniform(0.0, self._full_interval())


class TimerBackoff:
    """pynsq's curve: a :class:`BackoffTimer` from 0 to ``max_duration`` (or one you pass)."""

    def __init__(self, max_duration: float = 128.0, timer: BackoffTimer | None = None) -> None:
        self.timer = timer if timer is not None else BackoffTimer(0, max_duration)

    @property
    def in_backoff(self) -> bool:
        return self.timer.get_interval() > 0

    def interval(self) -> float:
        return self.timer.get_interval()

    def failure(self) -> None:
        self.timer.failure()

    def success(self) -> None:
        self.timer.success()

    def __repr__(self) -> str:
        return f"<TimerBackoff interval={self.timer.get_interval():g}s>"


STRATEGIES: dict[str, Callable[..., BackoffStrategy]] = {
    "exponential": lambda multiplier, max_duration, rng: ExponentialBackoff(multiplier, max_duration),
    "full_jitter": lambda multiplier, max_duration, rng: FullJitterBackoff(multiplier, max_duration, rng),
    "pynsq": lambda multiplier, max_duration, rng: TimerBackoff(max_duration),
}

StrategySpec = Union[str, BackoffStrategy, BackoffTimer]


def make_strategy(
    spec: StrategySpec | None,
    max_duration: float = 128.0,
    multiplier: float = 1.0,
    rng: random.Random | None = None,
) -> BackoffStrategy:
    """A strategy from a name (``exponential``, ``full_jitter``, ``pynsq``), a BackoffTimer, or
    an object that already implements :class:`BackoffStrategy` (returned as is)."""
    if spec is None:
        spec = "exponential"
    if isinstance(spec, str):
        factory = STRATEGIES.get(spec.replace("-", "_").lower())
        if factory is None:
            raise ValueError(f"unknown backoff strategy {spec!r} (choose from {', '.join(STRATEGIES)})")
        return factory(multiplier, max_duration, rng)
    if isinstance(spec, BackoffTimer):
        return TimerBackoff(timer=spec)
    if isinstance(spec, BackoffStrategy):
        return spec
    raise TypeError(
        "backoff_strategy must be a name, a BackoffTimer or an object with failure(), success(), "
        f"in_backoff and interval(), not {type(spec).__name__}"
    )


class BackoffAction(enum.Enum):
    START = "start"  # RDY 0 everywhere, wait for the window to end
    PROBE = "probe"  # the window ended: RDY 1 on one connection to test the waters
    RESUME = "resume"  # backoff is over: every connection back to its share


class BackoffWindow:
    """The Reader's backoff state: which result counts, when to probe, when to resume.

    ``record(True/False/None)`` for each FIN / REQ-with-backoff / neutral REQ, and
    ``window_elapsed()`` when the timer for the current window fires; both return the
    :class:`BackoffAction` to apply, or None. Results arriving during a window are ignored, so
    one result is counted per window.
    """

    def __init__(self, strategy: BackoffStrategy, clock: Callable[[], float] = time.monotonic) -> None:
        self.strategy = strategy
        self.clock = clock
        self.blocked = False  # a window is running
        self.completed = True  # no backoff to leave
        self.window_length = 0.0
        self.window_deadline = 0.0

    @property
    def in_backoff(self) -> bool:
        """True from the first counted failure until the strategy decays back to zero."""
        return self.blocked or not self.completed

    def record(self, success: bool | None) -> BackoffAction | None:
        if self.blocked:
            return None
        strategy = self.strategy
        if success:
            if self.completed and not strategy.in_backoff:
                return None  # the hot path: a FIN in normal operation
            strategy.success()
        elif success is False:
            strategy.failure()
        if strategy.in_backoff:
            return self._start_window()
        if not self.completed:
            self.completed = True
            return BackoffAction.RESUME
        return None

    def _start_window(self) -> BackoffAction:
        self.blocked = True
        self.completed = False
        self.window_length = max(0.0, float(self.strategy.interval()))
        self.window_deadline = self.clock() + self.window_length
        return BackoffAction.START

    def window_elapsed(self) -> BackoffAction:
        self.blocked = False
        if not self.strategy.in_backoff:
            self.completed = True
            return BackoffAction.RESUME
        return BackoffAction.PROBE

    def remaining(self) -> float:
        """Seconds left in the current window (0 when none is running)."""
        return max(0.0, self.window_deadline - self.clock()) if self.blocked else 0.0


class ReconnectBackoff:
    """Delays for reconnecting: ``initial * 2**attempt`` capped at ``maximum``, each with
    +/-``jitter`` (a fraction) so many clients do not reconnect in lockstep; ``reset()`` after a
    successful connection."""

    def __init__(
        self,
        initial: float = 1.0,
        maximum: float = 60.0,
        jitter: float = 0.25,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = _number(initial, "initial reconnect delay")
        self.maximum = _number(maximum, "maximum reconnect delay")
        if self.maximum < self.initial:
            raise ValueError(f"maximum reconnect delay ({maximum}) must be >= initial ({initial})")
        self.jitter = _number(jitter, "reconnect jitter")
        if self.jitter > 1:
            raise ValueError(f"reconnect jitter must be in [0, 1], got {jitter}")
        self._rng = rng or random.Random()
        self.attempts = 0

    def next_delay(self) -> float:
        base = min(self.initial * 2.0 ** min(self.attempts, 62), self.maximum)
        self.attempts += 1
        if self.jitter:
            base *= 1.0 + self._rng.uniform(-self.jitter, self.jitter)
        return min(base, self.maximum)

    def reset(self) -> None:
        self.attempts = 0
