"""Consumers (nsq-tail, nsq-to-file) stop on connection errors that no retry can fix.

Go's ``nsq_tail`` reconnects forever whatever the error, printing the same line every few seconds.
Refused connections, timeouts and nsqd restarts are worth retrying; but a peer that is not nsqd
(an HTTP or TLS server, malformed frames), a certificate that does not verify, a refused or
missing AUTH secret, or a ``--tls-required`` nsqd refusing plaintext fail the same way on every
attempt. For those the tool exits 1 with one line naming the topic, the nsqd and the error; the
library's own warnings about that connection are demoted to debug (shown with -vv) so the line
is not printed twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, Awaitable, Callable

from .exit_codes import ToolError, error_text

# nsqd's fatal errors that mean "this client is not allowed or not understood", not "try later"
PERMANENT_NSQ_ERRORS = frozenset({
    "E_AUTH_FAILED", "E_UNAUTHORIZED", "E_AUTH_FIRST", "E_AUTH_DISABLED", "E_INVALID",
    "E_BAD_TOPIC", "E_BAD_CHANNEL", "E_BAD_BODY",
})
_LIBRARY_LOGGERS = ("nsqcli.lib.conn", "nsqcli.lib.reader")


def is_permanent(error: BaseException) -> bool:
    """True for a connection error that retrying cannot fix (see the module docstring)."""
    import ssl

    from .lib.protocol.client import AuthRequiredError
    from .lib.protocol.errors import NSQError, ProtocolError
    from .lib.tls import TLSHandshakeError

    if isinstance(error, (ProtocolError, AuthRequiredError)):
        return True
    if isinstance(error, NSQError):
        return error.code in PERMANENT_NSQ_ERRORS
    if isinstance(error, TLSHandshakeError):
        return isinstance(error.__cause__, ssl.SSLError)  # not a reset during the handshake
    return False


class FatalConnectionGuard:
    """Collects the first permanent connection error of the tool's readers.

    Build readers with :meth:`reader` (same arguments as ``Reader``), then ``await
    guard.run(work)``: it returns what ``work`` returns, or raises a :class:`ToolError` as soon
    as a permanent error happened. :meth:`close` restores the library loggers.
    """

    def __init__(self, on_fatal: Callable[[str, BaseException], None] | None = None) -> None:
        self.on_fatal = on_fatal  # called once with (topic, error) when a permanent error happens
        self.error: BaseException | None = None
        self.label = ""  # "[topic/channel]"
        self.address = ""
        self._failed = asyncio.Event()
        self._filter = _DemoteWhileFatal(self)
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).addFilter(self._filter)

    def reader(self, *args: Any, **kwargs: Any) -> Any:
        reader = _guarded_reader_class()(*args, **kwargs)
        reader.fatal_guard = self
        return reader

    def report(self, reader: Any, conn: Any, error: BaseException) -> None:
        if self.error is None and is_permanent(error):
            self.error = error
            self.label = f"[{reader.topic}/{reader.channel}]"
            self.address = str(conn)
            self._failed.set()
            if self.on_fatal is not None:
                self.on_fatal(reader.topic, error)

    def describe(self) -> str:
        """The error, naming the nsqd (without the topic label)."""
        text = error_text(self.error) if self.error is not None else "connection failed"
        if self.address in text:  # "TLS handshake with nsqd at 127.0.0.1:4150 failed: ..."
            return text
        return f"nsqd at {self.address}: {text}"

    def tool_error(self) -> ToolError:
        return ToolError(f"{self.label} {self.describe()}")

    async def run(self, work: Awaitable[Any]) -> Any:
        task = asyncio.ensure_future(work)
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait([task, failed], return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when the wait itself is cancelled
            failed.cancel()
            finished = task.done()
            if not finished:
                task.cancel()
        if finished:
            return task.result()
        raise self.tool_error()

    def close(self) -> None:
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)


class _DemoteWhileFatal(logging.Filter):
    """Warnings and errors about a permanent failure go to debug: the tool reports it once."""

    def __init__(self, guard: FatalConnectionGuard) -> None:
        super().__init__()
        self.guard = guard

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            args = record.args if isinstance(record.args, tuple) else ()
            if self.guard.error is not None or any(
                    isinstance(arg, BaseException) and is_permanent(arg) for arg in args):
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


@functools.lru_cache(maxsize=None)
def _guarded_reader_class() -> type:
    from .lib.reader import Reader

    class GuardedReader(Reader):
        """A Reader that tells its guard about every connection error."""

        fatal_guard: FatalConnectionGuard | None = None

        def _on_conn_error(self, conn: Any, error: Any = None, **kwargs: Any) -> None:
            super()._on_conn_error(conn, error=error, **kwargs)
            if self.fatal_guard is not None and isinstance(error, BaseException):
                self.fatal_guard.report(self, conn, error)

    return GuardedReader
