"""``--timing original``: replay records with their original gaps, scaled by ``--speed``.

The first record is sent at once; record *i* is due ``(timestamp_i - timestamp_0) / speed`` after
it. Records whose time has passed (late, or out of order in the input) go immediately. The clock
is injected, so the schedule is tested without sleeping.
"""

from __future__ import annotations

import time
from typing import Callable

NANOS = 1_000_000_000


class OriginalTiming:
    def __init__(self, speed: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ValueError(f"--speed must be > 0, got {speed}")
        self.speed = speed
        self._clock = clock
        self._base_ts: int | None = None
        self._base_time = 0.0

    def due(self, timestamp: int) -> float:
        """Clock time at which a record stamped ``timestamp`` (ns) is to be sent."""
        if self._base_ts is None:
            self._base_ts = timestamp
            self._base_time = self._clock()
        return self._base_time + (timestamp - self._base_ts) / NANOS / self.speed

    def wait(self, timestamp: int) -> float:
        """Seconds to wait before sending this record (0 when it is due or late)."""
        return max(0.0, self.due(timestamp) - self._clock())
