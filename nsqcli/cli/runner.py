"""Runs one tool coroutine on an event loop and is the only place where a tool exits.

* The first SIGINT/SIGTERM sets :class:`Shutdown` (the tool drains gracefully: CLS, answer what
  is in flight, flush, then return); a second signal exits at once with status 130.
* Exceptions are mapped to an exit status and a one-line message by
  :func:`nsqcli.cli.exit_codes.describe`; only unexpected exceptions (bugs) print a traceback.
* A tool returns an :class:`~nsqcli.cli.exit_codes.ExitStatus` (None means success); when it was
  interrupted and otherwise succeeded, the status is 130 (``stop_status``: a tool whose normal
  end is a signal, such as the live view of ``nsq-stat``, makes that 0).

Usage from a click command::

    async def main(shutdown: Shutdown) -> ExitStatus: ...
    run_tool(main, console)
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, NoReturn

from nsqcli.cli.console import Console
from nsqcli.cli.exit_codes import ExitStatus, describe

if TYPE_CHECKING:  # asyncio is imported when a tool runs, not when this module loads
    import asyncio

ToolMain = Callable[["Shutdown"], Awaitable["ExitStatus | int | None"]]


class Shutdown:
    """A graceful-stop request shared between the runner and the tool.

    ``requested`` is set by the first signal; tools either poll it, ``await wait()``, or register
    a callback with :meth:`add_callback` (called once, on the loop, when the stop is requested).
    """

    def __init__(self) -> None:
        import asyncio

        self.signal_name: str | None = None
        #: set by the signal handler itself, before the loop gets to :meth:`request`: a tool
        #: that ends in between (its input closed at the same moment) still counts as stopped
        self.signalled = False
        self._event = asyncio.Event()
        self._callbacks: list[Callable[[], object]] = []
        self._waits: list[Callable[[], "str | None"]] = []

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    @property
    def interrupted(self) -> bool:
        """A signal came (even if the loop has not handled it yet): the run was stopped."""
        return self.signalled or self._event.is_set()

    def request(self, signal_name: str = "stop") -> None:
        if self._event.is_set():
            return
        self.signal_name = signal_name
        self._event.set()
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def add_callback(self, callback: Callable[[], object]) -> None:
        if self._event.is_set():
            callback()
        else:
            self._callbacks.append(callback)

    async def wait(self) -> None:
        await self._event.wait()

    def describe_wait(self, describe: Callable[[], "str | None"]) -> None:
        """``describe()`` says what a graceful stop would wait for (None: nothing): the first
        signal prints it at once, with how to stop without waiting."""
        self._waits.append(describe)

    def waiting(self) -> str | None:
        texts = []
        for describe in self._waits:
            try:
                text = describe()
            except Exception:  # noqa: BLE001 - a description must never break the stop
                text = None
            if text:
                texts.append(text)
        return "; ".join(texts) or None


def unanswered_wait(readers: Iterable[Any]) -> str | None:
    """What closing ``readers`` waits for: their unanswered messages, bounded by their
    ``close_timeout`` (None when nothing is unanswered)."""
    readers = list(readers)
    count = sum(getattr(conn, "in_flight", 0) for reader in readers
                for conn in list(getattr(reader, "conns", {}).values()))
    if not count:
        return None
    bound = max(getattr(reader, "close_timeout", 0) for reader in readers)
    return f"waiting up to {bound:g}s for {count} unanswered message(s) to be answered"


def silence_stdout() -> None:
    """Point stdout at /dev/null after a closed pipe so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a real file (tests): nothing will be flushed to a pipe anyway


def run_tool(main: ToolMain, console: Console,
             stop_status: ExitStatus = ExitStatus.INTERRUPTED) -> NoReturn:
    """Run ``main(shutdown)`` to completion and exit with its status (see the module docstring)."""
    exit_with(run_to_status(main, console, stop_status))


def exit_with(status: ExitStatus) -> NoReturn:
    """The one place a tool process exits (also used by paths that need no event loop)."""
    sys.exit(int(status))


def run_to_status(main: ToolMain, console: Console,
                  stop_status: ExitStatus = ExitStatus.INTERRUPTED) -> ExitStatus:
    """Like :func:`run_tool` but returns the status instead of exiting (for embedding/tests).

    ``stop_status`` is the status of a run that a signal stopped and that otherwise succeeded.
    """
    import asyncio

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # tornado finds the loop through asyncio
    shutdown_box: list[Shutdown] = []
    installed: list[int] = []

    signals_seen: list[int] = []
    announced: list[bool] = []

    def exit_now(name: str) -> None:
        console.error(f"{name} again: exiting at once")
        os._exit(int(stop_status))

    def announce(name: str) -> None:
        """Once, at the first signal: what the stop waits for, and how not to wait."""
        if announced or not shutdown_box:
            return
        announced.append(True)
        again = "press Ctrl-C again" if name == "SIGINT" else f"send {name} again"
        waiting = shutdown_box[0].waiting()
        if waiting:
            console.notice(f"{name}: {waiting}; {again} to exit at once")
        else:
            console.info(f"{name}: finishing what is in flight ({again} to exit at once)")

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        shutdown = shutdown_box[0]
        if shutdown.requested:
            exit_now(name)
        announce(name)
        shutdown.request(name)

    def on_signal_now(signum: int, frame: object) -> None:
        # Python-level handler: runs even while the loop is blocked (a write to a stalled
        # stdout pipe), so the first signal is answered at once and a second one always
        # exits; the loop still runs on_signal
        signals_seen.append(signum)
        if len(signals_seen) > 1:
            exit_now(signal.Signals(signum).name)
        if shutdown_box:
            shutdown_box[0].signalled = True  # a plain store: safe in a signal handler
        announce(signal.Signals(signum).name)

    async def wrapper() -> ExitStatus:
        shutdown = Shutdown()
        shutdown_box.append(shutdown)
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, on_signal, signum)
                signal.signal(signum, on_signal_now)  # the loop's wakeup fd stays in place
                installed.append(signum)
            except (RuntimeError, ValueError, NotImplementedError):
                pass  # not the main thread, or no signal support: run without handlers
        result = await main(shutdown)
        status = ExitStatus.SUCCESS if result is None else ExitStatus(int(result))
        if shutdown.interrupted and status == ExitStatus.SUCCESS:
            return stop_status
        return status

    try:
        status = loop.run_until_complete(wrapper())
    except KeyboardInterrupt:
        status = stop_status
    except BaseException as exc:  # noqa: BLE001 - this is the one place errors become statuses
        if isinstance(exc, SystemExit):
            raise
        status = report_exception(exc, console)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        _cancel_pending(loop)
        loop.close()
        asyncio.set_event_loop(None)
        console.close()
    console.end_progress()
    return status


def report_exception(exc: BaseException, console: Console) -> ExitStatus:
    """Print one line for an expected failure (a traceback for a bug) and return its status."""
    described = describe(exc)
    if described is None:
        import traceback

        console.error(f"internal error: {type(exc).__name__}: {exc}")
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=console.err)
        return ExitStatus.ERROR
    status, message = described
    if status == ExitStatus.INTERRUPTED:
        return status
    console.error(message)
    return status


def _cancel_pending(loop: "asyncio.AbstractEventLoop") -> None:
    import asyncio

    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not tasks:
        loop.run_until_complete(loop.shutdown_asyncgens())
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
