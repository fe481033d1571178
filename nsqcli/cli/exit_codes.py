"""The one exit-code policy of every nsqcli tool, and the one table from errors to exit status.

======  ===================  ===============================================================
status  name                 meaning
======  ===================  ===============================================================
0       SUCCESS              everything asked for was done (every record acknowledged by nsqd)
1       ERROR                a failure: unreachable nsqd, an ``E_*`` error, a bad file, ...
2       USAGE                bad flags or arguments (click's usage errors use it too)
3       NOT_ACKNOWLEDGED     the tool ran, but some records/messages were not acknowledged by
                             nsqd (``nsq-pub``/``nsq-replay`` say how many of how many; rerun
                             with ``--failed-file`` output to finish the job)
130     INTERRUPTED          stopped by SIGINT/SIGTERM (after a graceful drain)
======  ===================  ===============================================================

Tools raise :class:`ToolError` (or let library errors through); only :mod:`nsqcli.cli.runner` turns
them into an exit status with :func:`describe`, printing one line and never a traceback for an
expected failure.
"""

from __future__ import annotations

import enum
from typing import Any

from nsqcli.lib.error_text import address_error_text, error_text

__all__ = [
    "AddressError", "CONSUMER_EXIT_STATUS_HELP", "EXIT_STATUS_HELP", "ExitStatus", "ToolError",
    "UsageError", "describe", "error_text", "exit_status_help", "publish_error_status",
    "status_meanings", "statuses_listed",
]


class ExitStatus(enum.IntEnum):
    """Exit statuses shared by every tool (see the module docstring for the table)."""

    SUCCESS = 0
    ERROR = 1
    USAGE = 2
    NOT_ACKNOWLEDGED = 3
    INTERRUPTED = 130


_STATUS_HELP = {
    ExitStatus.SUCCESS: "0 success",
    ExitStatus.ERROR: "1 failure (unreachable nsqd, E_* error, I/O error)",
    ExitStatus.USAGE: "2 usage error",
    ExitStatus.NOT_ACKNOWLEDGED: "3 some records were not acknowledged by nsqd",
    ExitStatus.INTERRUPTED: "130 interrupted (SIGINT/SIGTERM)",
}


def exit_status_help(*statuses: ExitStatus, **meanings: str) -> str:
    """The help epilog listing ``statuses`` (a tool lists only those it can return);
    ``meanings`` overrides a status's text by its name (``ERROR="1 ..."``)."""
    return "Exit status: " + "; ".join(
        meanings.get(status.name, _STATUS_HELP[status]) for status in statuses) + "."


def statuses_listed(epilog: str | None) -> list[ExitStatus]:
    """The statuses an epilog made by :func:`exit_status_help` lists (for the man pages)."""
    return list(status_meanings(epilog))


def status_meanings(epilog: str | None) -> dict[ExitStatus, str]:
    """What an epilog made by :func:`exit_status_help` says each status it lists means, without
    the number (``{ExitStatus.USAGE: "usage error", ...}``, for the man pages)."""
    import re

    if not epilog or "Exit status:" not in epilog:
        return {}
    text = epilog[epilog.index("Exit status:") + len("Exit status:"):].strip().removesuffix(".")
    _, *parts = re.split(r"(?:^|; )(\d+) ", text)
    return {ExitStatus(int(number)): meaning for number, meaning in zip(parts[::2], parts[1::2])}


#: nsq-pub, nsq-replay and the umbrella command: every status
EXIT_STATUS_HELP = exit_status_help(*ExitStatus)
#: nsq-tail and nsq-to-file retry unreachable nsqds and acknowledge nothing they publish
CONSUMER_EXIT_STATUS_HELP = exit_status_help(
    ExitStatus.SUCCESS, ExitStatus.ERROR, ExitStatus.USAGE, ExitStatus.INTERRUPTED,
    ERROR="1 failure (an error no retry fixes, e.g. TLS, AUTH or not an nsqd; an I/O error)")


class ToolError(Exception):
    """An expected failure: the runner prints ``message`` on one line and exits with ``status``."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.status = ExitStatus(status)


class UsageError(ToolError):
    """Bad flag values found after parsing (e.g. a file that cannot be read): exit 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitStatus.USAGE)


class AddressError(ToolError):
    """A failure talking to one nsqd/nsqlookupd: the message names the address."""

    def __init__(self, address: str, cause: BaseException, doing: str = "",
                 daemon: str = "nsqd") -> None:
        super().__init__(address_error_text(address, cause, doing, daemon))
        self.address = address
        self.__cause__ = cause


def describe(exc: BaseException) -> tuple[ExitStatus, str] | None:
    """Map an expected exception to ``(status, one-line message)``; None means "unexpected".

    This is the single table from library errors to exit statuses. Library classes are looked up
    by name in :mod:`nsqcli.lib.errors` only when that module is already loaded, so this costs no
    import at startup.
    """
    if isinstance(exc, ToolError):
        return exc.status, exc.message
    if isinstance(exc, KeyboardInterrupt):
        return ExitStatus.INTERRUPTED, "interrupted"
    import sys

    publish_errors = sys.modules.get("nsqcli.lib.publisher.errors")
    if publish_errors is not None and isinstance(exc, publish_errors.PublishError):
        return publish_error_status(exc)
    lib_errors = sys.modules.get("nsqcli.lib.protocol.errors")
    if lib_errors is not None:
        if isinstance(exc, lib_errors.NSQError):
            return ExitStatus.ERROR, f"nsqd answered {exc}"
        if isinstance(exc, lib_errors.LocalProtocolError):
            # a bad name or argument caught before anything was sent
            return ExitStatus.USAGE, error_text(exc)
        if isinstance(exc, lib_errors.Error):
            return ExitStatus.ERROR, error_text(exc)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return ExitStatus.ERROR, error_text(exc)
    if isinstance(exc, OSError):
        return ExitStatus.ERROR, error_text(exc)
    return None


def publish_error_status(exc: Any) -> tuple[ExitStatus, str]:
    """``(status, one line)`` for what stopped a publisher (a ``PublishError``, such as
    ``report.error``), nsq-pub's and nsq-replay's: records given up after the retry timeout or
    over max-msg-size are status 3 (the "N of M records were not acknowledged" line follows);
    nsqd unreachable at start or refusing the topic is status 1."""
    from nsqcli.lib.publisher import errors  # loaded already: the error came from it

    if isinstance(exc, errors.RecordTooLargeError):
        return (ExitStatus.NOT_ACKNOWLEDGED,
                f"{exc.message} (use --skip-oversized to skip such records)")
    if isinstance(exc, errors.RetryTimeoutError):
        return ExitStatus.NOT_ACKNOWLEDGED, exc.message
    return ExitStatus.ERROR, exc.message
