"""What the doc generators read of a click command: its context, options, their kinds and a
group's subcommands (shared by the man pages of gen_docs.py and gen_completions.py)."""

from __future__ import annotations

import click


def context(command: click.Command, prog: str | None = None) -> click.Context:
    return click.Context(command, info_name=prog, **(command.context_settings or {}))


def options_of(command: click.Command) -> list[click.Option]:
    ctx = context(command)
    return [p for p in command.get_params(ctx) if isinstance(p, click.Option)]


def takes_value(option: click.Option) -> bool:
    return not option.is_flag and not option.count


def choices(option: click.Option) -> list[str]:
    return list(option.type.choices) if isinstance(option.type, click.Choice) else []


def is_path(option: click.Parameter) -> bool:
    return isinstance(option.type, (click.Path, click.File))


def subcommands(command: click.Command) -> list[tuple[str, click.Command]]:
    """(name, command) of a group's available subcommands; [] for a plain command."""
    if not isinstance(command, click.Group):
        return []
    ctx = click.Context(command)
    subs = [(name, command.get_command(ctx, name)) for name in command.list_commands(ctx)]
    return [(name, sub) for name, sub in subs if sub is not None]
