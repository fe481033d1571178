"""Per-invocation consoles: data goes to stdout (bytes), diagnostics to stderr.

Diagnostics use rich (colour, markup-free) only when stderr is a terminal; otherwise they are plain
lines, and rich is never imported, which keeps a tool's start-up fast in pipelines. Streams are
injected (click's CliRunner replaces sys.stdout/sys.stderr), never captured at import time.
"""

from __future__ import annotations

import re
import sys
import time
from typing import IO, Any, cast

# verbosity levels: -q -> QUIET, default -> NORMAL, -v -> VERBOSE, -vv -> DEBUG
QUIET, NORMAL, VERBOSE, DEBUG = -1, 0, 1, 2

_STYLES = {"error": "bold red", "warning": "yellow", "info": "", "debug": "dim"}
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\n``): diagnostics quote what
    peers send (nsqd error texts, file names), which must not drive the terminal or split the
    one-line error."""
    if text.isprintable():
        return text
    return _CONTROL_CHARS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Console:
    """stdout for data, stderr for diagnostics; one per tool invocation.

    ``prog`` prefixes every diagnostic line (``nsq-pub: error: ...``) so that messages are
    attributable in a pipeline. ``verbosity`` filters: errors always show, warnings unless quiet,
    info with -v, debug with -vv.
    """

    def __init__(
        self,
        prog: str,
        verbosity: int = NORMAL,
        out: IO[bytes] | None = None,
        err: IO[str] | None = None,
        color: bool | None = None,
    ) -> None:
        self.prog = prog
        self.prefix = f"{prog}: "  # of every diagnostic line (nsq-to-file --log-prefix sets it)
        self.verbosity = verbosity
        self._out = out
        self._err = err
        self._color = color
        self._rich: Any = None
        self._progress_shown = False
        self._on_close: list[Any] = []

    # ---- streams ----------------------------------------------------------------------------

    @property
    def out(self) -> IO[bytes]:
        """The binary stdout that data is written to; ToolError when the process was started
        with stdout closed (``>&-``: Python then has no sys.stdout)."""
        if self._out is None:
            stdout = sys.stdout
            if stdout is None:
                from nsqcli.cli.exit_codes import ToolError

                raise ToolError("cannot write to stdout: it is closed")
            # a stand-in stdout without a binary buffer (a test's) is used as it is
            self._out = cast("IO[bytes]", getattr(stdout, "buffer", stdout))
        return self._out

    @property
    def err(self) -> IO[str]:
        return self._err if self._err is not None else sys.stderr

    @property
    def err_is_terminal(self) -> bool:
        return _isatty(self.err)

    @property
    def color(self) -> bool:
        if self._color is None:
            self._color = self.err_is_terminal
        return self._color

    def on_close(self, callback: Any) -> None:
        """Run ``callback`` when the invocation ends (the runner calls :meth:`close`)."""
        self._on_close.append(callback)

    def close(self) -> None:
        """Undo what this invocation changed globally (log forwarding), newest first."""
        while self._on_close:
            self._on_close.pop()()

    # ---- diagnostics ------------------------------------------------------------------------

    def error(self, message: str) -> None:
        self._emit("error", message)

    def warning(self, message: str) -> None:
        if self.verbosity > QUIET:
            self._emit("warning", message)

    def notice(self, message: str) -> None:
        """An info line that needs no -v (shown unless -q): what the user must know now."""
        if self.verbosity > QUIET:
            self._emit("info", message)

    def info(self, message: str) -> None:
        if self.verbosity >= VERBOSE:
            self._emit("info", message)

    def debug(self, message: str) -> None:
        if self.verbosity >= DEBUG:
            self._emit("debug", message)

    def progress(self, message: str) -> None:
        """A status line rewritten in place on a terminal (a plain line otherwise)."""
        if self.verbosity <= QUIET:
            return
        err = self.err
        if self.err_is_terminal:
            err.write("\r\x1b[2K" + message)
            self._progress_shown = True
        else:
            err.write(message + "\n")
        err.flush()

    def end_progress(self) -> None:
        if self._progress_shown:
            self.err.write("\n")
            self.err.flush()
            self._progress_shown = False

    def _emit(self, level: str, message: str) -> None:
        self.end_progress()
        label = "" if level == "info" else f"{level}: "
        line = f"{self.prefix}{label}{printable(message)}"
        if self.color:
            console = self._rich_console()
            console.print(line, style=_STYLES[level] or None, markup=False, highlight=False,
                          soft_wrap=True)
            return
        err = self.err
        try:
            err.write(line + "\n")
            err.flush()
        except (OSError, ValueError):  # stderr gone: nothing sensible left to do
            pass

    def _rich_console(self) -> Any:
        if self._rich is None:
            from rich.console import Console as RichConsole  # lazy: ~50 ms of imports

            self._rich = RichConsole(file=self.err, force_terminal=True, highlight=False)
        return self._rich


class RateMeter:
    """Counts and a rate for progress lines; the clock is injectable for tests."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()

    def rate(self, count: int) -> float:
        elapsed = self._clock() - self.started
        return count / elapsed if elapsed > 0 else 0.0

    def elapsed(self) -> float:
        return self._clock() - self.started


def forward_library_logs(console: Console, demote: bool = False) -> None:
    """Show the library's log records (``nsqcli.lib``) as the tool's diagnostics lines.

    ``demote`` shows warnings only with -v (for tools that report the same events themselves).
    """
    import logging

    class _Forward(logging.Handler):
        def __init__(self, only_debug: bool = False) -> None:
            super().__init__()
            self.only_debug = only_debug

        def emit(self, record: logging.LogRecord) -> None:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad log call must not break the tool
                message = str(record.msg)
            if record.exc_info and record.exc_info[1] is not None:
                # one line, so no traceback: but always the exception's type and text
                exc = record.exc_info[1]
                text = str(exc)
                message += f": {type(exc).__name__}" + (f": {text}" if text else "")
            if self.only_debug:
                console.debug(message)
            elif record.levelno >= logging.ERROR:
                console.error(message)
            elif record.levelno >= logging.WARNING and not demote:
                console.warning(message)
            elif record.levelno >= logging.INFO:
                console.info(message)
            else:
                console.debug(message)

    # tornado repeats what the library reports ("SSL Error on ..."): only with -vv
    for name, only_debug in (("nsqcli.lib", False), ("tornado", True)):
        logger = logging.getLogger(name)
        handler = _Forward(only_debug)
        saved = (logger.propagate, logger.level)
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.DEBUG if console.verbosity >= DEBUG else logging.INFO)
        console.on_close(_restore_logger(logger, handler, saved))


def _restore_logger(logger: Any, handler: Any, saved: tuple[bool, int]) -> Any:
    def restore() -> None:
        logger.removeHandler(handler)
        logger.propagate, level = saved
        logger.setLevel(level)

    return restore
