"""The long-running tools' loop helpers: a repeating timer, and waiting for the first of several
things (a stop request, a failure, the work itself) to happen.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable


class Repeating:
    """Calls ``action()`` every ``interval`` seconds on the running loop until :meth:`cancel`.

    ``interval`` may be a function, asked before each wait (an interval that adapts). An
    ``action`` that raises is reported by the loop and is not called again.
    """

    def __init__(self, interval: float | Callable[[], float], action: Callable[[], Any]) -> None:
        self._interval = interval
        self._action = action
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._schedule()

    def _schedule(self) -> None:
        delay = self._interval() if callable(self._interval) else self._interval
        self._handle = self._loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._action()
        if self._handle is not None:  # not cancelled by the action
            self._schedule()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


async def first_of(*awaitables: Awaitable[Any]) -> list[asyncio.Future[Any]]:
    """Wait until one of ``awaitables`` is done, then cancel the others (also when this wait is
    itself cancelled). Returns the ones that had ended, in the order given (several when they
    ended together); a task passed in is its own future, so the caller can look it up."""
    futures = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended: list[asyncio.Future[Any]] = [future for future in futures if future.done()]
        for future in futures:
            if not future.done():
                future.cancel()
    return ended
