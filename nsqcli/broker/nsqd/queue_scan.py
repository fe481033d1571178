"""Which channels' in-flight and deferred queues are served when: nsqd's queueScanLoop.

nsqd (v1.3.0, nsqd.go) does not look at every channel on every tick. It keeps a cached list of
channels, refreshed every ``QueueScanRefreshInterval`` (5 s, counted from its start; no flag),
and every ``QueueScanInterval`` (100 ms) serves ``--queue-scan-selection-count`` (20) channels
picked at random from that list, again at once while more than ``QueueScanDirtyPercent`` (25 %)
of them had a message to move. So the timeouts and deferred messages of a channel created after
the last refresh wait for the next one, up to 5 s after they were due. The embedded nsqd follows
the same rules, so that code tested against it does not depend on timely redelivery that nsqd
does not give.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .channel import Channel

#: nsqd's QueueScanDirtyPercent: scan again at once while more of the selection was dirty.
DIRTY_FRACTION = 0.25


class QueueScanner:
    """``tick(now)`` serves the due messages of a random selection of the known channels.

    ``all_channels()`` lists every channel; it is read at ``start`` and at every refresh.
    """

    def __init__(self, all_channels: Callable[[], Iterable["Channel"]], refresh_interval: float,
                 selection_count: int) -> None:
        self._all_channels = all_channels
        self._refresh_interval = refresh_interval
        self._selection_count = selection_count
        self._channels: list["Channel"] = []
        self._next_refresh = 0.0

    def start(self, now: float) -> None:
        """nsqd starts its loop with the channels it has (those of its metadata file)."""
        self._channels = list(self._all_channels())
        self._next_refresh = now + self._refresh_interval

    def tick(self, now: float, clock: Callable[[], float]) -> None:
        if now >= self._next_refresh:
            self._channels = list(self._all_channels())
            while self._next_refresh <= now:  # a ticker: late ticks are dropped, not bunched
                self._next_refresh += self._refresh_interval
        channels = self._channels
        count = min(self._selection_count, len(channels))
        if count == 0:
            return
        while True:
            dirty = sum(1 for channel in random.sample(channels, count) if channel.scan(now))
            if dirty / count <= DIRTY_FRACTION:
                return
            now = clock()
