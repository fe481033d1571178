"""Consumers (nsq-tail, nsq-to-file) stop on connection errors that no retry can fix.

Go's ``nsq_tail`` reconnects forever whatever the error, printing the same line every few seconds.
Refused connections, timeouts and nsqd restarts are worth retrying; but a peer that is not nsqd
(an HTTP or TLS server, malformed frames), a certificate that does not verify, a refused or
missing AUTH secret, or a ``--tls-required`` nsqd refusing plaintext fail the same way on every
attempt. When every nsqd a reader knows of (its addresses, what lookupd lists, what it is
connected to) fails that way, the tool exits 1 with one line naming the topic, the nsqd and the
error. While other nsqds work, one bad nsqd of a cluster does not stop the consumer: it is named
in one warning, the reader keeps retrying it as lookupd lists it (silently, until it has
connected again), and the others are consumed. The library's own warnings about such a
connection are demoted to debug (shown with -vv) so that nothing is printed twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, Awaitable, Callable

from nsqcli.cli.exit_codes import ToolError, error_text

# nsqd's fatal errors that mean "this client is not allowed or not understood", not "try later"
PERMANENT_NSQ_ERRORS = frozenset({
    "E_AUTH_FAILED", "E_UNAUTHORIZED", "E_AUTH_FIRST", "E_AUTH_DISABLED", "E_INVALID",
    "E_BAD_TOPIC", "E_BAD_CHANNEL", "E_BAD_BODY",
})
_LIBRARY_LOGGERS = ("nsqcli.lib.conn", "nsqcli.lib.reader")


def is_permanent(error: BaseException) -> bool:
    """True for a connection error that retrying cannot fix (see the module docstring)."""
    import ssl

    from nsqcli.lib.protocol.client import AuthRequiredError
    from nsqcli.lib.protocol.errors import NSQError, ProtocolError
    from nsqcli.lib.tls import TLSHandshakeError

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

    def __init__(self, on_fatal: Callable[[str, BaseException], None] | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.on_fatal = on_fatal  # called once with (topic, error) when the tool must stop
        self.warn = warn  # told once per bad nsqd while the reader has others
        self.error: BaseException | None = None
        self.label = ""  # "[topic/channel]"
        self.address = ""
        self._failed = asyncio.Event()
        self._bad_nsqds: dict[Any, set[str]] = {}  # reader -> nsqds failing permanently
        self._filter = _DemoteWhileFatal(self)
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).addFilter(self._filter)

    def reader(self, *args: Any, **kwargs: Any) -> Any:
        reader = _guarded_reader_class()(*args, **kwargs)
        reader.fatal_guard = self
        return reader

    def report(self, reader: Any, conn: Any, error: BaseException) -> None:
        if self.error is not None or not is_permanent(error):
            return
        address = str(conn)
        bad = self._bad_nsqds.setdefault(reader, set())
        first = address not in bad
        bad.add(address)
        known: set[str] = getattr(reader, "known_nsqds", set)()
        label = f"[{reader.topic}/{reader.channel}]"
        if known <= bad:  # nothing left to consume from
            self.error, self.label, self.address = error, label, address
            self._failed.set()
            if self.on_fatal is not None:
                self.on_fatal(reader.topic, error)
        elif first and self.warn is not None:
            self.warn(f"{label} {_naming(address, error_text(error))}; consuming from the "
                      "other nsqds meanwhile")

    def bad_nsqds(self) -> set[str]:
        """The nsqds failing permanently (the library's lines about them are demoted)."""
        return set().union(*self._bad_nsqds.values())

    def recovered(self, reader: Any, address: str) -> None:
        """``reader`` subscribed on ``address``: a later permanent error is news again."""
        self._bad_nsqds.get(reader, set()).discard(address)

    def describe(self) -> str:
        """The error, naming the nsqd (without the topic label)."""
        text = error_text(self.error) if self.error is not None else "connection failed"
        return _naming(self.address, text)

    def tool_error(self) -> ToolError:
        return ToolError(f"{self.label} {self.describe()}")

    async def run(self, work: Awaitable[Any]) -> Any:
        from nsqcli.cli.timers import first_of

        task = asyncio.ensure_future(work)
        if task in await first_of(task, self._failed.wait()):
            return task.result()
        raise self.tool_error()

    def close(self) -> None:
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)


def _naming(address: str, text: str) -> str:
    if address in text:  # "TLS handshake with nsqd at 127.0.0.1:4150 failed: ..."
        return text
    return f"nsqd at {address}: {text}"


class _DemoteWhileFatal(logging.Filter):
    """Warnings and errors about a permanent failure go to debug: the tool reports it once."""

    def __init__(self, guard: FatalConnectionGuard) -> None:
        super().__init__()
        self.guard = guard

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            args = record.args if isinstance(record.args, tuple) else ()
            bad = self.guard.bad_nsqds()
            if self.guard.error is not None or any(
                    (isinstance(arg, BaseException) and is_permanent(arg)) or str(arg) in bad
                    for arg in args):
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


@functools.lru_cache(maxsize=None)
def _guarded_reader_class() -> type:
    from nsqcli.lib.reader import Reader

    class GuardedReader(Reader):
        """A Reader that tells its guard about every connection error."""

        fatal_guard: FatalConnectionGuard | None = None

        def _on_conn_error(self, conn: Any, error: Any = None, **kwargs: Any) -> None:
            super()._on_conn_error(conn, error=error, **kwargs)
            if self.fatal_guard is not None and isinstance(error, BaseException):
                self.fatal_guard.report(self, conn, error)

        def _on_subscribed(self, conn: Any, future: Any) -> None:
            super()._on_subscribed(conn, future)
            if (self.fatal_guard is not None and not future.cancelled()
                    and future.exception() is None):
                self.fatal_guard.recovered(self, str(conn))

        def known_nsqds(self) -> set[str]:
            """Every nsqd this reader may consume from: given, listed by lookupd (now or before,
            while it is retried), connected."""
            discovery = self._discovery
            return (set(discovery.direct) | set(discovery.listed) | set(discovery.discovered)
                    | set(self.conns))

    return GuardedReader
