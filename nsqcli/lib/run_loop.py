"""``nsq.run()``: run the IOLoop until SIGINT/SIGTERM, then close every Reader and Writer gracefully.

(This module is not called ``run`` so that importing it never shadows the ``nsqcli.lib.run`` function.)

pynsq's ``run()`` stopped the loop on the first signal and abandoned everything in flight. Here the
first signal closes every live Reader and Writer (their ``close()`` drains: Readers answer their
in-flight messages, Writers wait for nsqd's acks), then stops the loop; a second signal stops the
loop at once. Applications that run their own ``asyncio.run()`` never need ``run()``; they can
``await close_all()`` on the way out to get the same drain.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from typing import Any, Callable

from tornado.ioloop import IOLoop

from . import registry

logger = logging.getLogger(__name__)

#: The signals run() turns into a graceful shutdown.
SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def close_all(timeout: float | None = 30.0) -> None:
    """Close every live Reader and Writer and wait (up to ``timeout`` seconds) for their drains."""
    waits = []
    for client in list(registry.live_clients()):
        try:
            result = client.close()
        except Exception:
            logger.exception("closing %r failed", client)
            continue
        if inspect.isawaitable(result):
            waits.append(asyncio.ensure_future(result))
    if not waits:
        return
    done, pending = await asyncio.wait(waits, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        logger.warning("%d client(s) did not finish closing within %gs", len(pending), timeout)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            logger.error("closing a client failed: %r", task.exception())


class _Shutdown:
    """The signal policy: the first signal drains then stops, the next one stops at once."""

    def __init__(self, io_loop: IOLoop, drain_timeout: float | None) -> None:
        self.io_loop = io_loop
        self.drain_timeout = drain_timeout
        self.signals_seen = 0
        self.task: asyncio.Task[None] | None = None

    def on_signal(self, signum: int) -> None:
        self.signals_seen += 1
        name = signal.Signals(signum).name
        if self.signals_seen > 1:
            logger.warning("%s again: stopping now without waiting for the drain", name)
            self.io_loop.stop()
            return
        again = "press Ctrl-C again" if signum == signal.SIGINT else f"send {name} again"
        waiting = self.waiting_for()
        if waiting:  # said at once (a warning reaches stderr even without logging set up)
            logger.warning("%s received: closing readers and writers, %s; %s to stop now",
                           name, waiting, again)
        else:
            logger.info("%s received: closing readers and writers (%s to stop now)", name, again)
        self.task = asyncio.ensure_future(self._drain_then_stop())

    def waiting_for(self) -> str | None:
        """The unanswered messages the drain will wait for, and for how long at most."""
        readers = [c for c in registry.live_clients() if hasattr(c, "_unanswered")]
        count = sum(reader._unanswered() for reader in readers)
        if not count:
            return None
        bound = max(getattr(reader, "close_timeout", 0.0) for reader in readers)
        if self.drain_timeout is not None:
            bound = min(bound, self.drain_timeout)
        return f"waiting up to {bound:g}s for {count} unanswered message(s) to be answered"

    async def _drain_then_stop(self) -> None:
        try:
            await close_all(self.drain_timeout)
        except Exception:  # (cancellation by a second signal is not an Exception: no stop then)
            logger.exception("closing the clients failed")
        self.io_loop.stop()


def run(*, drain_timeout: float | None = 30.0) -> None:
    """Start the IOLoop: every Reader and Writer created so far starts working.

    Returns after SIGINT/SIGTERM once every client closed (bounded by ``drain_timeout``
    seconds), or at once on a second signal.
    """
    io_loop = IOLoop.current()
    shutdown = _Shutdown(io_loop, drain_timeout)
    restore = _install_signal_handlers(io_loop, shutdown.on_signal)
    try:
        io_loop.start()
    finally:
        restore()
        task = shutdown.task
        if task is not None and not task.done():
            task.cancel()


def _install_signal_handlers(io_loop: IOLoop, handler: Callable[[int], None]) -> Callable[[], None]:
    """Route SHUTDOWN_SIGNALS to ``handler`` on the loop; return a function undoing it."""
    aio_loop: Any = getattr(io_loop, "asyncio_loop", None)
    previous = {sig: signal.getsignal(sig) for sig in SHUTDOWN_SIGNALS}
    try:
        for sig in SHUTDOWN_SIGNALS:
            aio_loop.add_signal_handler(sig, handler, sig)

        def restore() -> None:
            for sig in SHUTDOWN_SIGNALS:
                aio_loop.remove_signal_handler(sig)
                signal.signal(sig, previous[sig])

        return restore
    except (AttributeError, NotImplementedError, RuntimeError, ValueError):
        # Windows, or not the main thread's loop: plain handlers that hop onto the loop.
        pass

    def from_signal(signum: int, frame: object) -> None:
        io_loop.add_callback(handler, signum)  # add_callback is safe from a signal handler

    for sig in SHUTDOWN_SIGNALS:
        try:
            signal.signal(sig, from_signal)
        except ValueError:  # not the main thread: signals cannot be caught here
            pass

    def restore_plain() -> None:
        for sig in SHUTDOWN_SIGNALS:
            try:
                signal.signal(sig, previous[sig])
            except ValueError:
                pass

    return restore_plain
