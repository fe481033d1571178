"""The one table of nsqcli's tools, and the console scripts' entry points.

:data:`TOOLS` lists every tool: its ``nsqcli`` subcommand, where its click command is, and its
console script if it has one. The umbrella command (:mod:`nsqcli.__main__`), the docs generator
(``scripts/gen_docs.py``) and the tests read it; ``pyproject.toml``'s ``[project.scripts]``
cannot, so a test checks that it names :data:`SCRIPTS`' entry points.

An entry point makes a Ctrl-C while a tool is still loading exit quietly. A tool handles
SIGINT/SIGTERM (:mod:`nsqcli.cli.runner`) once click, rich and its own modules are imported,
0.1-0.25 s after it starts. A Ctrl-C before that raised KeyboardInterrupt in the middle of an
import and printed a traceback of the import machinery. Nothing has been read from nsqd or
published yet at that point, so it now ends the tool at once with the status a signal gives it
later on (130, or 0 for nsq-stat). This module imports nothing heavy: the window it leaves is
Python's own start-up.
"""

from __future__ import annotations

import sys
from importlib import import_module

TYPE_CHECKING = False  # typing is not imported at run time either: this stays light
if TYPE_CHECKING:
    from typing import Callable

#: ExitStatus.INTERRUPTED and SUCCESS (nsqcli.cli.exit_codes is not imported: this stays light)
INTERRUPTED = 130
SUCCESS = 0


class Tool:
    """One tool: ``nsqcli SUBCOMMAND`` runs the click command ``module.command``; ``script``
    (if any) runs ``main``'s ``main()`` (default: ``module``'s), and exits ``stop_status`` on a
    Ctrl-C while loading."""

    __slots__ = ("subcommand", "module", "command", "script", "main", "stop_status")

    def __init__(self, subcommand: str, module: str, command: str = "command",
                 script: str | None = None, main: str | None = None,
                 stop_status: int = INTERRUPTED) -> None:
        self.subcommand = subcommand
        self.module = module
        self.command = command
        self.script = script
        self.main = main or module
        self.stop_status = stop_status

    @property
    def entry_point(self) -> str:
        """``module:function`` of its console script (``pyproject.toml``)."""
        return f"{__name__}:{self.subcommand.replace('-', '_')}"


#: in the order of ``nsqcli --help``
TOOLS = (
    Tool("tail", "nsqcli.tail.command", script="nsq-tail"),
    # nsq-pub's click-free quick path first, see nsqcli.pub.fast
    Tool("pub", "nsqcli.pub.command", script="nsq-pub", main="nsqcli.pub.fast"),
    Tool("to-file", "nsqcli.to_file.command", "to_file", script="nsq-to-file"),
    Tool("replay", "nsqcli.replay.command", script="nsq-replay"),
    Tool("dev-server", "nsqcli.dev_server", "dev_server"),
    Tool("topic", "nsqcli.admin.command", "topic"),
    Tool("channel", "nsqcli.admin.command", "channel"),
    # stopping is how nsq-stat's live view ends (exit 0)
    Tool("stat", "nsqcli.stat.command", script="nsq-stat", stop_status=SUCCESS),
    Tool("to-nsq", "nsqcli.to_nsq.command", script="nsq-to-nsq"),
)
#: the umbrella command's own script
UMBRELLA = Tool("nsqcli", "nsqcli.__main__", "cli", script="nsqcli")

#: console script -> its tool, the umbrella's included
SCRIPTS = {tool.script: tool for tool in (UMBRELLA, *TOOLS) if tool.script}


def _run(module: str, stop_status: int = INTERRUPTED) -> None:
    try:
        import_module(module).main()
    except KeyboardInterrupt:
        sys.exit(stop_status)


def _entry(tool: Tool) -> Callable[[], None]:
    def run() -> None:
        _run(tool.main, tool.stop_status)

    run.__name__ = run.__qualname__ = tool.entry_point.rpartition(":")[2]
    run.__doc__ = f"``{tool.script}``."
    return run


# the entry points: nsqcli(), tail(), pub(), to_file(), replay(), stat(), to_nsq()
globals().update({_tool.entry_point.rpartition(":")[2]: _entry(_tool) for _tool in SCRIPTS.values()})
