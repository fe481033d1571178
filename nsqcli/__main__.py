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

# subcommand -> (module, attribute names to try for its click command)
TOOLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tail": ("nsqcli.tail.command", ("command",)),
    "pub": ("nsqcli.pub.command", ("command",)),
    "to-file": ("nsqcli.to_file.command", ("command", "to_file")),
    "replay": ("nsqcli.replay.command", ("command", "replay")),
    "dev-server": ("nsqcli.dev_server", ("dev_server", "command")),
    "topic": ("nsqcli.admin.command", ("topic",)),
    "channel": ("nsqcli.admin.command", ("channel",)),
    "stat": ("nsqcli.stat.command", ("command",)),
    "to-nsq": ("nsqcli.to_nsq.command", ("command",)),
}


def load_tool(name: str) -> click.Command | None:
    """The click command of a tool, or None when its module is not available (yet)."""
    module_name, attributes = TOOLS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    for attribute in attributes:
        command = getattr(module, attribute, None)
        if isinstance(command, click.Command):
            return command
    return None


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
