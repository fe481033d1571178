"""The retry timeout of :class:`~nsqcli.lib.publisher.engine.PublishEngine`: when to stop resending.

A periodic check (a loop timer, no task) gives up on an nsqd that stayed unreachable for
``retry_timeout`` (fan-out: that nsqd's share; round-robin: everything, once no nsqd is left) and
on batches that kept failing (``E_*_FAILED``) for that long.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Callable

from .batch import Batch
from .config import PublisherConfig
from .errors import PublishError, RetryTimeoutError
from .report import PublishReport

if TYPE_CHECKING:  # pragma: no cover
    from .conn import Destination


class RetryTimeouts:
    """A part of PublishEngine (uses its config, destinations, queues, _outcome and _stop)."""

    config: PublisherConfig
    destinations: list[Destination]
    report: PublishReport
    log: Callable[[str], None]
    clock: Callable[[], float]
    _fan_out: bool
    _ready: deque[Batch]
    _outstanding: int
    _changed: asyncio.Event
    _abandoned: bool
    _watchdog: asyncio.TimerHandle | None

    if TYPE_CHECKING:  # provided by PublishEngine and Outcomes
        def _outcome(self, batch: Batch, ok: bool) -> None: ...
        def _stop(self, error: PublishError, abandon: bool = True) -> None: ...
        def _seal_partial(self) -> None: ...

    def _arm_watchdog(self) -> None:
        interval = min(0.25, max(0.01, self.config.retry_timeout / 10))
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(interval, self._check_timeouts)

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _check_timeouts(self) -> None:
        now = self.clock()
        timeout = self.config.retry_timeout
        if self._outstanding == 0:  # the clock only runs while records wait for an nsqd
            for dest in self.destinations:
                if not dest.up:
                    dest.down_since = now
        expired = [d for d in self.destinations
                   if not d.up and d.down_since is not None and now - d.down_since >= timeout]
        fan_out = self._fan_out
        if fan_out:
            for dest in expired:
                self._give_up_destination(dest)
            if all(d.gave_up for d in self.destinations):
                self._stop(self.report.error or RetryTimeoutError("every nsqd is unreachable"))
        elif expired and len(expired) == len(self.destinations):
            dest = expired[0]
            self._stop(RetryTimeoutError(
                f"no nsqd reachable for {timeout:g}s "
                f"(last: {dest.address}: {dest.last_error_text or 'connection lost'})"))
        queues = [d.queue for d in self.destinations] if fan_out else [self._ready]
        if self._abandoned:  # give up everything not sent, the partial batch included
            self._seal_partial()
            for queue in queues:
                while queue:
                    self._outcome(queue.popleft(), False)
        else:  # batches that keep failing on live connections (E_*_FAILED) also time out
            for queue in queues:
                for batch in [b for b in queue
                              if b.failed_since is not None and now - b.failed_since >= timeout]:
                    queue.remove(batch)
                    self._outcome(batch, False)
        self._changed.set()
        self._arm_watchdog()

    def _give_up_destination(self, dest: Destination) -> None:
        reason = dest.last_error_text or "connection lost"
        if not dest.gave_up:
            self.log(f"{dest.address}: giving up after {self.config.retry_timeout:g}s: {reason}")
            dest.gave_up = True
            if self.report.error is None:
                self.report.error = RetryTimeoutError(
                    f"{dest.address}: not reachable for {self.config.retry_timeout:g}s ({reason})",
                    dest.address)
        while dest.queue:
            self._outcome(dest.queue.popleft(), False)

