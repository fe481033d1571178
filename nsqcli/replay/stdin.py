"""Archive chunks read on a daemon thread, for nsq-replay's stdin.

Files are read on the event loop (a 256 KiB block from a disk never waits long), but a pipe may
stay silent for as long as its writer likes: read there, it would freeze the loop, so a SIGTERM
would neither stop the replay nor let acknowledgements in. Here a daemon thread pulls the chunks
(at most ``AHEAD`` ahead of the loop) and the loop waits for the next one or for a stop request.
The thread is a daemon so that the process can exit while it still waits for input.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Iterator

AHEAD = 2  # chunks read ahead of the publisher
STOP_POLL = 0.05  # seconds between looks at the stop request while no chunk comes


class Stopped(Exception):
    """The stop request came while waiting for input."""


_END = object()


class ThreadedChunks:
    """``await next_chunk()`` -> the next chunk, None at the end; raises what reading raised,
    or :class:`Stopped` when ``should_stop()`` turns true while waiting."""

    def __init__(self, chunks: Iterator[Any], should_stop: Callable[[], bool]) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._room = threading.Semaphore(AHEAD)
        self._should_stop = should_stop
        self._thread = threading.Thread(target=self._pull, args=(chunks,), daemon=True,
                                        name="nsq-replay-stdin")
        self._thread.start()

    def _pull(self, chunks: Iterator[Any]) -> None:
        put = self._queue.put_nowait
        try:
            for chunk in chunks:
                self._loop.call_soon_threadsafe(put, chunk)
                self._room.acquire()
            item: Any = _END
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, raised there
            item = exc
        try:
            self._loop.call_soon_threadsafe(put, item)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    async def next_chunk(self) -> Any:
        while True:
            if self._should_stop():
                raise Stopped()
            try:
                item = await asyncio.wait_for(self._queue.get(), STOP_POLL)
            except asyncio.TimeoutError:
                continue
            if item is _END:
                return None
            if isinstance(item, BaseException):
                raise item
            self._room.release()
            return item
