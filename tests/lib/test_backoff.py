"""Pure tests of the backoff policies (no loop, no sleeps; clock and random source injected)."""

import random
from decimal import Decimal

import pytest

from nsqcli.lib import BackoffTimer
from nsqcli.lib.backoff import (
    BackoffAction,
    BackoffWindow,
    ExponentialBackoff,
    FullJitterBackoff,
    ReconnectBackoff,
    TimerBackoff,
    make_strategy,
)


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


# ---- BackoffTimer: pynsq's exact curve ------------------------------------------------------

def test_backoff_timer_matches_pynsq_curve():
    import nsq.backoff_timer as pynsq_timer  # the real pynsq 0.9.1 in the dev venv

    ours, theirs = BackoffTimer(0, 128), pynsq_timer.BackoffTimer(0, 128)
    steps = [False] * 15 + [True] * 5 + [False] * 300 + [True] * 400
    for ok in steps:
        (ours.success if ok else ours.failure)()
        (theirs.success if ok else theirs.failure)()
        assert ours.get_interval() == theirs.get_interval()


def test_backoff_timer_first_failure_and_ceiling():
    timer = BackoffTimer(0, 128)
    assert timer.get_interval() == 0
    timer.failure()
    assert timer.get_interval() == pytest.approx(3.584)
    for _ in range(1000):
        timer.failure()
    assert timer.get_interval() == 128
    for _ in range(1000):
        timer.success()
    assert timer.get_interval() == 0


def test_backoff_timer_min_interval_and_decimal():
    timer = BackoffTimer(Decimal("1.5"), 10, ratio=0.5, short_length=2, long_length=2)
    assert timer.get_interval() == 1.5
    timer.failure()
    assert timer.get_interval() == pytest.approx(1.5 + 2.125 + 2.125)


@pytest.mark.parametrize(
    "args, error",
    [
        (("a", 1), TypeError),
        ((0, None), TypeError),
        ((5, 1), ValueError),
        ((-1, 1), ValueError),
        ((0, 1, 2.0), ValueError),
        ((0, 1, 0.25, 0), ValueError),
    ],
)
def test_backoff_timer_rejects_bad_arguments(args, error):
    with pytest.raises(error):
        BackoffTimer(*args)


# ---- strategies -------------------------------------------------------------------------------

def test_exponential_doubles_up_to_the_cap_and_decays():
    strategy = ExponentialBackoff(multiplier=1.0, max_duration=16)
    seen = []
    for _ in range(8):
        strategy.failure()
        seen.append(strategy.interval())
    assert seen == [2, 4, 8, 16, 16, 16, 16, 16]
    assert strategy.in_backoff
    for expected in (8, 4, 2, 0):
        strategy.success()
        assert strategy.interval() == expected
    assert not strategy.in_backoff
    strategy.success()
    assert strategy.level == 0


def test_exponential_level_rises_only_while_the_next_window_fits_under_the_cap():
    # go-nsq (consumer.go): the level rises only if Calculate(level + 1) <= MaxBackoffDuration
    capped = ExponentialBackoff(1.0, 100)
    seen = []
    for _ in range(9):
        capped.failure()
        seen.append(capped.interval())
    assert seen == [2, 4, 8, 16, 32, 64, 64, 64, 64]  # never a 100 s window
    assert ExponentialBackoff(1.0, 128).level == 0
    exact = ExponentialBackoff(1.0, 128)
    for _ in range(9):
        exact.failure()
    assert exact.interval() == 128  # a cap that is a level's window is reached
    # a cap below the first window (2 x multiplier) never backs off, as in go-nsq
    short = ExponentialBackoff(1.0, 1.0)
    short.failure()
    assert not short.in_backoff and short.interval() == 0
    disabled = ExponentialBackoff(1.0, 0)
    disabled.failure()
    assert not disabled.in_backoff and disabled.interval() == 0


def test_full_jitter_is_below_the_exponential_interval():
    strategy = FullJitterBackoff(1.0, 128, rng=random.Random(7))
    for level in range(1, 8):
        strategy.failure()
        values = [strategy.interval() for _ in range(200)]
        assert all(0 <= v < 2 ** level for v in values)
        assert max(values) > 2 ** level * 0.8  # really spread over the range


def test_make_strategy():
    assert isinstance(make_strategy(None), ExponentialBackoff)
    assert type(make_strategy("exponential")) is ExponentialBackoff
    assert isinstance(make_strategy("full-jitter"), FullJitterBackoff)
    pynsq_like = make_strategy("pynsq", max_duration=128)
    pynsq_like.failure()
    assert pynsq_like.interval() == pytest.approx(3.584)
    timer = BackoffTimer(0, 10)
    assert make_strategy(timer).timer is timer
    custom = ExponentialBackoff()
    assert make_strategy(custom) is custom
    with pytest.raises(ValueError, match="unknown backoff strategy"):
        make_strategy("linear")
    with pytest.raises(TypeError):
        make_strategy(42)


# ---- the Reader's backoff window --------------------------------------------------------------

def test_window_counts_one_result_per_window_then_probes_and_resumes():
    clock = FakeClock()
    window = BackoffWindow(ExponentialBackoff(1.0, 128), clock)
    assert window.record(True) is None and not window.in_backoff
    assert window.record(False) is BackoffAction.START
    assert window.blocked and window.window_length == 2
    assert window.remaining() == 2
    clock.now += 1.5
    assert window.remaining() == pytest.approx(0.5)
    # results during a window are ignored: the level stays at 1
    assert window.record(False) is None
    assert window.record(True) is None
    assert window.strategy.level == 1
    assert window.window_elapsed() is BackoffAction.PROBE
    assert window.in_backoff and not window.blocked
    # the probe fails: a longer window
    assert window.record(False) is BackoffAction.START
    assert window.window_length == 4
    assert window.window_elapsed() is BackoffAction.PROBE
    # a success lowers the level but does not end backoff yet: a shorter window
    assert window.record(True) is BackoffAction.START
    assert window.window_length == 2
    assert window.window_elapsed() is BackoffAction.PROBE
    assert window.record(True) is BackoffAction.RESUME
    assert not window.in_backoff
    assert window.record(True) is None


def test_window_neutral_result_restarts_the_window_without_changing_level():
    window = BackoffWindow(ExponentialBackoff(1.0, 128), FakeClock())
    window.record(False)
    window.window_elapsed()
    assert window.record(None) is BackoffAction.START
    assert window.strategy.level == 1
    # neutral results in normal operation do nothing
    fresh = BackoffWindow(ExponentialBackoff(), FakeClock())
    assert fresh.record(None) is None


def test_window_with_pynsq_timer():
    window = BackoffWindow(TimerBackoff(128), FakeClock())
    assert window.record(False) is BackoffAction.START
    assert window.window_length == pytest.approx(3.584)
    window.window_elapsed()
    assert window.record(True) is BackoffAction.RESUME


def test_window_disabled_backoff_never_starts():
    window = BackoffWindow(ExponentialBackoff(1.0, 0), FakeClock())
    assert window.record(False) is None
    assert not window.in_backoff


# ---- reconnect delays -------------------------------------------------------------------------

def test_reconnect_backoff_without_jitter_doubles_to_the_cap():
    delays = ReconnectBackoff(0.5, 4.0, jitter=0)
    assert [delays.next_delay() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    delays.reset()
    assert delays.next_delay() == 0.5


def test_reconnect_backoff_jitter_stays_in_range():
    delays = ReconnectBackoff(1.0, 100.0, jitter=0.25, rng=random.Random(3))
    values = []
    for attempt in range(6):
        value = delays.next_delay()
        base = 2 ** attempt
        assert base * 0.75 <= value <= base * 1.25
        values.append(value / base)
    assert len(set(values)) > 1


@pytest.mark.parametrize("args", [(2.0, 1.0), (-1, 1), (1, 2, 1.5)])
def test_reconnect_backoff_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        ReconnectBackoff(*args)
