"""Run embedded brokers on an event loop of their own, in a background thread.

Tests (and anything else synchronous) then drive the brokers like an external daemon: sync code,
``asyncio.run()`` in a test, tornado IOLoops and subprocesses all connect over real sockets, and
none of them shares (or blocks) the brokers' loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: How long a synchronous caller waits for a coroutine on the broker loop by default.
DEFAULT_CALL_TIMEOUT = 30.0


class BrokerThread:
    """An asyncio event loop running forever in a daemon thread.

    ``call(factory)`` runs ``factory()`` (a coroutine function, so that the coroutine is created
    on the broker loop) and returns its result to the calling thread, re-raising its exception.
    """

    def __init__(self, name: str = "nsqcli-broker") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the broker thread is not started")
        return self._loop

    def start(self) -> "BrokerThread":
        with self._lock:
            if self.running:
                return self
            ready = threading.Event()
            loop = asyncio.new_event_loop()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                try:
                    loop.run_forever()
                finally:
                    _cancel_remaining(loop)
                    loop.close()

            self._loop = loop
            self._thread = threading.Thread(target=run, name=self.name, daemon=True)
            self._thread.start()
            ready.wait()
        return self

    def call(
        self,
        factory: Callable[..., Awaitable[T]],
        *args: Any,
        timeout: float | None = DEFAULT_CALL_TIMEOUT,
    ) -> T:
        """Run ``factory(*args)`` on the broker loop and wait for its result."""
        if not self.running:
            raise RuntimeError("the broker thread is not running")
        if threading.current_thread() is self._thread:
            raise RuntimeError("BrokerThread.call() from the broker thread would deadlock")

        async def runner() -> T:
            return await factory(*args)

        future = asyncio.run_coroutine_threadsafe(runner(), self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:  # not the builtin one before 3.11
            future.cancel()
            raise TimeoutError(f"broker call {getattr(factory, '__qualname__', factory)!r} "
                               f"did not finish within {timeout} s") from None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop (pending tasks are cancelled) and join the thread."""
        with self._lock:
            thread, loop = self._thread, self._loop
            if thread is None or loop is None:
                return
            if thread.is_alive():
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout)
            self._thread = None
            self._loop = None

    def __enter__(self) -> "BrokerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


_shared: BrokerThread | None = None
_shared_lock = threading.Lock()


def shared_broker_thread() -> BrokerThread:
    """The process-wide broker thread (started on first use, a daemon: it ends with the process)."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.running:
            _shared = BrokerThread().start()
        return _shared
