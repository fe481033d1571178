"""The console scripts' entry points: a Ctrl-C while a tool is still loading exits quietly.

A tool handles SIGINT/SIGTERM (:mod:`nsqcli.runner`) once click, rich and its own modules are
imported, about 0.2 s after it starts. A Ctrl-C before that raised KeyboardInterrupt in the
middle of an import and printed a traceback of the import machinery. Nothing has been read from
nsqd or published yet at that point, so it now ends the tool at once with 130 (interrupted), as
a signal does later on. This module imports nothing heavy, so the window it leaves is
Python's own start-up.
"""

from __future__ import annotations

import sys
from importlib import import_module

#: ExitStatus.INTERRUPTED (nsqcli.exit_codes is not imported here: this stays light)
INTERRUPTED = 130


def _run(module: str) -> None:
    try:
        import_module(module).main()
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)


def nsqcli() -> None:
    """``nsqcli``, the umbrella command."""
    _run("nsqcli.__main__")


def tail() -> None:
    """``nsq-tail``."""
    _run("nsqcli.tail")


def pub() -> None:
    """``nsq-pub`` (its click-free quick path first, see :mod:`nsqcli.pub_fast`)."""
    _run("nsqcli.pub_fast")


def to_file() -> None:
    """``nsq-to-file``."""
    _run("nsqcli.to_file")


def replay() -> None:
    """``nsq-replay``."""
    _run("nsqcli.replay")
