"""The console scripts' entry points: a Ctrl-C while a tool is still loading exits quietly.

A tool handles SIGINT/SIGTERM (:mod:`nsqcli.cli.runner`) once click, rich and its own modules
are imported, 0.1-0.25 s after it starts. A Ctrl-C before that raised KeyboardInterrupt in the
middle of an import and printed a traceback of the import machinery. Nothing has been read from
nsqd or published yet at that point, so it now ends the tool at once with the status a signal
gives it later on (130, or 0 for nsq-stat). This module imports nothing heavy: the window it
leaves is Python's own start-up.
"""

from __future__ import annotations

import sys
from importlib import import_module

#: ExitStatus.INTERRUPTED and SUCCESS (nsqcli.cli.exit_codes is not imported: this stays light)
INTERRUPTED = 130
SUCCESS = 0


def _run(module: str, stop_status: int = INTERRUPTED) -> None:
    try:
        import_module(module).main()
    except KeyboardInterrupt:
        sys.exit(stop_status)


def nsqcli() -> None:
    """``nsqcli``, the umbrella command."""
    _run("nsqcli.__main__")


def tail() -> None:
    """``nsq-tail``."""
    _run("nsqcli.tail.command")


def pub() -> None:
    """``nsq-pub`` (its click-free quick path first, see :mod:`nsqcli.pub.fast`)."""
    _run("nsqcli.pub.fast")


def to_file() -> None:
    """``nsq-to-file``."""
    _run("nsqcli.to_file.command")


def replay() -> None:
    """``nsq-replay``."""
    _run("nsqcli.replay.command")


def stat() -> None:
    """``nsq-stat``: stopping is how its live view ends (exit 0)."""
    _run("nsqcli.stat.command", SUCCESS)


def to_nsq() -> None:
    """``nsq-to-nsq``."""
    _run("nsqcli.to_nsq.command")
