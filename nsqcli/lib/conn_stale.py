"""AsyncConn's stale-connection check: nothing received for two heartbeat intervals closes the
connection (nsqd sends a heartbeat every interval, so silence that long means a dead peer)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .errors import NSQTimeoutError
from .conn_commands import DISCONNECTED

if TYPE_CHECKING:  # pragma: no cover
    from .conn_options import ConnOptions


class StaleCheckMixin:
    """Mixed into AsyncConn; uses its options, state, loop, last-receive mark and ``_close``."""

    if TYPE_CHECKING:  # what AsyncConn provides
        state: str

        @property
        def id(self) -> str: ...
        _options: ConnOptions
        _recv_mark: float
        _stale_timer: asyncio.TimerHandle | None

        def _get_loop(self) -> asyncio.AbstractEventLoop: ...
        def _close(self, error: BaseException | None) -> None: ...

    def _stale_limit(self) -> float:
        interval = self._options.heartbeat_interval
        return -1 if interval == -1 else 2 * interval

    def _schedule_stale_check(self, delay: float) -> None:
        if delay < 0:
            return
        self._stale_timer = self._get_loop().call_later(delay, self._check_stale)

    def _check_stale(self) -> None:
        self._stale_timer = None
        if self.state == DISCONNECTED:
            return
        limit = self._stale_limit()
        idle = self._get_loop().time() - self._recv_mark
        if idle >= limit:
            self._close(NSQTimeoutError(
                f"waiting for data (nothing for 2 x heartbeat_interval = {limit:g}s)", limit, self.id))
        else:
            self._schedule_stale_check(limit - idle)
