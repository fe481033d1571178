"""Go's flag syntax in front of click, so that scripts written for the Go apps run unchanged.

Go's ``flag`` package (``nsq_tail``, ``to_nsq``, ``nsq_to_file``) takes every flag with one or two
dashes, a value after ``=`` or as the next word, and booleans as ``-flag`` or
``-flag=true|false|1|0|t|f|T|F|TRUE|FALSE|True|False``. click takes ``--long`` options and
clusters of short ones (``-vv``, ``-n5``). :func:`normalise` rewrites a command line from the
first form to the second before click parses it, driven by the command's own click options, so
the two can never disagree:

* ``-name``, ``--name``, ``-name=value``, ``--name=value``, ``-name value`` -> ``--name [value]``
  when ``name`` is an option's long name (or a one-letter option: Go's ``-n=5``, ``--n 5``);
* a boolean given a Go value -> the flag, its ``--no-`` form, or nothing (false, no ``--no-``);
* any other single-dash word is a cluster of short options, as in click (``-vv``, ``-n5``,
  ``-mtext``, ``-0q``); a word that is neither is refused naming the whole word, not its first
  letter. So a single-dash word that names a long option is that option (``-mode`` is
  ``--mode``, not ``-m ode``); ``-nq`` is ``-n q`` (and refused: q is not a number).

Values are copied verbatim (``-m -topic`` publishes "-topic"); ``--`` ends the options. Errors
name the flag as the user typed it (``-max-in-flight``, not ``--max-in-flight``).
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import Any, NamedTuple

import click

#: Go's strconv.ParseBool, exactly.
GO_BOOLEANS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}

FLAG, COUNT, VALUE, OPTIONAL_VALUE = "flag", "count", "value", "optional value"


class Spec(NamedTuple):
    """One name of a click option, as the normaliser sees it."""

    param: click.Option
    name: str  # the click name to emit: "--topic", "-n", "--no-progress"
    kind: str  # FLAG, COUNT, VALUE or OPTIONAL_VALUE
    negated: bool = False  # a secondary ("--no-...") name of a boolean


class OptionTable(NamedTuple):
    long: dict[str, Spec]  # "topic", "print-topic", "no-progress", and "n" for "-n"
    short: dict[str, Spec]  # "n", "m", "0", "q", "v", "h"


def _kind(option: click.Option) -> str:
    if option.count:
        return COUNT
    if option.is_flag:
        return FLAG
    if getattr(option, "_flag_needs_value", False):  # a value, or flag_value when none follows
        return OPTIONAL_VALUE
    return VALUE


def option_table(params: list[click.Parameter]) -> OptionTable:
    long: dict[str, Spec] = {}
    short: dict[str, Spec] = {}
    for param in params:
        if not isinstance(param, click.Option):
            continue
        kind = _kind(param)
        for name in param.opts:
            spec = Spec(param, name, kind)
            if name.startswith("--"):
                long[name[2:]] = spec
            else:
                short[name[1:]] = spec
        for name in param.secondary_opts:
            long[name.lstrip("-")] = Spec(param, name, kind, negated=True)
    for letter, spec in short.items():  # Go has no short options: -n is also --n and -n=5
        long.setdefault(letter, spec)
    return OptionTable(long, short)


class Normalised(NamedTuple):
    args: list[str]
    typed: dict[str, str]  # click option name -> the flag as typed, where they differ


def normalise(args: list[str], table: OptionTable, interspersed: bool = True,
              ctx: click.Context | None = None) -> Normalised:
    """``args`` with Go-style flags rewritten for click (see the module docstring).

    ``interspersed=False`` (a group) stops at the first positional word: the rest belongs to a
    subcommand, which normalises it itself. Raises click usage errors for what is wrong in Go
    syntax already (an unknown single-dash word, a bad boolean value), unless
    ``ctx.resilient_parsing`` (shell completion) asks for no errors.
    """
    out: list[tuple[str, str | None]] = []  # (token, name of the boolean it sets, if any)
    typed: dict[str, str] = {}
    resilient = ctx is not None and ctx.resilient_parsing
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if token == "--" or not token.startswith("-") or token == "-":
            if token == "--" or not interspersed:
                out.extend((rest, None) for rest in args[index - 1:])
                break
            out.append((token, None))
            continue
        body = token[2:] if token.startswith("--") else token[1:]
        name, equals, value = body.partition("=")
        spec = table.long.get(name)
        if spec is None:
            if token.startswith("--") or _is_cluster(body, table) or resilient:
                out.append((token, None))  # click's own syntax (or its own error)
                if not token.startswith("--") and _cluster_takes_next(args, index, body, table):
                    out.append((args[index], None))  # the value of its last option (-vn 5)
                    index += 1
                continue
            known = [f"--{long_name}" for long_name in table.long if len(long_name) > 1]
            raise click.NoSuchOption(f"-{name}", possibilities=known, ctx=ctx)
        flag_typed = f"{token[:len(token) - len(body)]}{name}"
        if flag_typed != spec.name:
            typed[spec.param.name or spec.name] = flag_typed
        if spec.kind == FLAG:
            _boolean(out, spec, flag_typed, value if equals else None, resilient, ctx)
        elif spec.kind == COUNT or (not equals and spec.kind == OPTIONAL_VALUE):
            out.append((spec.name + (f"={value}" if equals else ""), None))
            takes_next = index < len(args) and not _looks_like_option(args[index])
            if spec.kind == OPTIONAL_VALUE and takes_next:
                out.append((args[index], None))
                index += 1
        elif equals:
            out.extend(((spec.name, None), (value, None)))
        else:
            out.append((spec.name, None))
            if index < len(args):  # the value, whatever it looks like (Go and click agree)
                out.append((args[index], None))
                index += 1
    return Normalised([token for token, _ in out], typed)


def _boolean(out: list[tuple[str, str | None]], spec: Spec, flag_typed: str, value: str | None,
             resilient: bool, ctx: click.Context | None) -> None:
    if value is None:
        setting = True
    elif value in GO_BOOLEANS:
        setting = GO_BOOLEANS[value]
    elif resilient:
        setting = True
    else:
        raise click.BadParameter(
            f"{value!r} is not a boolean (use true/false, 1/0, t/f)", ctx=ctx,
            param_hint=f"'{flag_typed}'")
    if spec.negated:
        setting = not setting
    param = spec.param
    key = param.name or spec.name
    out[:] = [item for item in out if item[1] != key]  # Go: the last setting of a flag wins
    if setting:
        out.append((_on_name(param), key))
    elif param.secondary_opts:
        out.append((param.secondary_opts[0], key))
    # false without a --no- form: the flag's default (off), so nothing to pass


def _on_name(param: click.Option) -> str:
    return next((name for name in param.opts if name.startswith("--")), param.opts[0])


def _looks_like_option(token: str) -> bool:
    return token.startswith("-") and len(token) > 1


def _is_cluster(body: str, table: OptionTable) -> bool:
    """click's reading of ``-<body>``: short flags, the last of which may take the rest."""
    if not body:
        return False
    for letter in body:
        spec = table.short.get(letter)
        if spec is None:
            return False
        if spec.kind in (VALUE, OPTIONAL_VALUE):
            return True  # the rest of the word (or the next word) is its value
    return True


def _cluster_takes_next(args: list[str], index: int, body: str, table: OptionTable) -> bool:
    """Whether the cluster's last option takes the next word as its value (``-vn 5``)."""
    for position, letter in enumerate(body):
        spec = table.short.get(letter)
        if spec is None or spec.kind not in (VALUE, OPTIONAL_VALUE):
            continue
        if position < len(body) - 1 or index >= len(args):
            return False  # the rest of the word is the value, or there is no next word
        return spec.kind == VALUE or not _looks_like_option(args[index])
    return False


def name_typed_flags(exc: click.UsageError, typed: dict[str, str],
                     params: list[click.Parameter]) -> click.UsageError:
    """``exc`` naming the flags as the user typed them (``'-topic'``, not ``'--topic'``)."""
    if isinstance(exc, click.BadParameter) and exc.param is not None and exc.param_hint is None:
        if exc.param.name in typed:
            exc.param_hint = f"'{typed[exc.param.name]}'"
    elif isinstance(exc, click.BadOptionUsage):  # "Option '--topic' requires an argument."
        for param in params:
            if param.name in typed:
                for name in param.opts:
                    # click types message Final, yet reads it only when the error is shown
                    exc.message = exc.message.replace(  # type: ignore[misc]
                        f"'{name}'", f"'{typed[param.name]}'")
    return exc


class GoFlagCommand(click.Command):
    """A click command that also takes Go's flag syntax (see the module docstring)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        normalised = normalise(args, option_table(self.get_params(ctx)),
                               ctx.allow_interspersed_args, ctx)
        try:
            return super().parse_args(ctx, normalised.args)
        except click.UsageError as exc:
            if exc.ctx is None:  # the parser's errors: "Try 'nsq-tail --help'" needs the context
                exc.ctx = ctx
            raise name_typed_flags(exc, normalised.typed, self.get_params(ctx)) from None


class GoFlagGroup(click.Group):
    """The umbrella ``nsqcli``: its own options in Go syntax too (``nsqcli -version``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        normalised = normalise(args, option_table(self.get_params(ctx)), False, ctx)
        return super().parse_args(ctx, normalised.args)


GO_SYNTAX_HELP = (
    "Go flag syntax works too, as in the Go apps: -topic x, -topic=x, --topic=x, -n=5, "
    "-gzip=false (booleans take true/false, 1/0, t/f)."
)


def tool_command(name: str, epilog: str | None = None, **settings: Any) -> Any:
    """``@click.command`` for a tool: Go flag syntax (said in the epilog), ``-h``, help 100
    columns wide."""
    context = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
    context.update(settings.pop("context_settings", {}))
    epilog = GO_SYNTAX_HELP + ("\n\n" + epilog if epilog else "")
    return click.command(name, cls=GoFlagCommand, context_settings=context, epilog=epilog,
                         **settings)
