"""``nsqcli`` / ``python -m nsqcli``: the umbrella command mounting every tool.

``nsqcli tail|pub|to-file|replay|stat|to-nsq|dev-server ...`` run exactly the commands of the standalone
scripts (``nsq-tail``, ``nsq-pub``, ...); ``nsqcli topic|channel ...`` administer a cluster
(:mod:`nsqcli.admin`). Subcommands are imported only when used, so that
``nsqcli pub`` starts as fast as ``nsq-pub``; a tool whose module is missing or broken does not
break the others.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from nsqcli import __version__
from nsqcli.cli.exit_codes import EXIT_STATUS_HELP
from nsqcli.cli.go_flags import GoFlagGroup
from nsqcli.cli.launch import TOOLS as TOOL_TABLE

# subcommand -> (module, name of its click command there)
TOOLS: dict[str, tuple[str, str]] = {tool.subcommand: (tool.module, tool.command)
                                     for tool in TOOL_TABLE}


def load_tool(name: str) -> click.Command | None:
    """The click command of a tool, or None when its module is not available (yet)."""
    module_name, attribute = TOOLS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    command = getattr(module, attribute, None)
    return command if isinstance(command, click.Command) else None


class LazyGroup(GoFlagGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(TOOLS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in TOOLS:
            return None
        command = load_tool(cmd_name)
        if command is None:
            return _unavailable(cmd_name)
        return command


def _unavailable(name: str) -> click.Command:
    @click.command(name, help=f"(not available in this build: {TOOLS[name][0]} is missing)",
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def missing(**_: Any) -> None:
        raise click.ClickException(f"'{name}' is not available in this build")

    return missing


@click.group(
    cls=LazyGroup,
    epilog=EXIT_STATUS_HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", message="%(prog)s (nsqcli) %(version)s")
def cli() -> None:
    """NSQ command-line tools: tail, pub, to-file, replay, stat (a live view of a cluster),
    to-nsq (a relay between nsqds), an embedded dev-server, and topic and channel
    administration."""


def main() -> None:
    cli(prog_name="nsqcli")


if __name__ == "__main__":
    main()
