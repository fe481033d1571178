#!/usr/bin/env python3
"""Generate man pages (man/*.1) and shell completions (completions/{bash,zsh,fish}/...) from the
click definitions of the tools, so that they never disagree with ``--help``.

    python scripts/gen_docs.py           # (re)write the files
    python scripts/gen_docs.py --check   # exit 1 listing the files that are stale

The completions are static (they list each tool's options and choices), so they work without
starting Python on every <TAB>. The output is deterministic: no dates, stable order.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Iterator

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nsqcli import __version__  # noqa: E402
from nsqcli.__main__ import TOOLS, cli, load_tool  # noqa: E402
from nsqcli.exit_codes import ExitStatus, statuses_listed  # noqa: E402

# standalone script name -> umbrella subcommand
SCRIPTS = {"nsq-tail": "tail", "nsq-pub": "pub", "nsq-to-file": "to-file", "nsq-replay": "replay"}

EXIT_STATUS_TEXT = {
    ExitStatus.SUCCESS: "success (nsq-pub/nsq-replay: every record was acknowledged by nsqd)",
    ExitStatus.ERROR: "failure: unreachable nsqd, an E_* error from nsqd, an I/O error",
    ExitStatus.USAGE: "usage error: bad flags or arguments",
    ExitStatus.NOT_ACKNOWLEDGED: "some records were not acknowledged by nsqd (the count is "
    "printed; --failed-file holds them)",
    ExitStatus.INTERRUPTED: "interrupted by SIGINT or SIGTERM (after a graceful drain)",
}


MAN_ONLY = {"nsqcli-dev-server": "dev-server"}  # subcommands without a script of their own


def tools(table: dict[str, str] = SCRIPTS) -> Iterator[tuple[str, click.Command]]:
    """(program name, click command) of every available tool, the umbrella included."""
    for script, sub in table.items():
        command = load_tool(sub)
        if command is not None:
            yield script, command
    if table is SCRIPTS:
        yield "nsqcli", cli


def _context(command: click.Command, prog: str | None = None) -> click.Context:
    return click.Context(command, info_name=prog, **(command.context_settings or {}))


# ---- man pages ---------------------------------------------------------------------------------


def _roff(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("-", "\\-")
    lines = []
    for line in text.splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _paragraphs(text: str) -> str:
    """Docstring-style help -> roff paragraphs (lines joined, blank lines -> .PP)."""
    text = inspect.cleandoc(click.unstyle(text)).replace("``", "").split("\b")[0]
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    return "\n.PP\n".join(_roff(p) for p in paragraphs)


def _option_heading(param: click.Parameter) -> str:
    names = ", ".join(f"\\fB{_roff(name)}\\fR" for name in param.opts + param.secondary_opts)
    if isinstance(param, click.Option) and not param.is_flag and not param.count:
        metavar = param.make_metavar(click.Context(click.Command("x")))
        names += f" \\fI{_roff(metavar)}\\fR"
    return names


def _option_help(param: click.Option) -> str:
    parts = [param.help or ""]
    if param.show_default and param.default not in (None, (), False):
        parts.append(f"[default: {param.default}]")
    if param.envvar:
        parts.append(f"[env: {param.envvar}]")
    return " ".join(p for p in parts if p)


def render_man(prog: str, command: click.Command) -> str:
    ctx = _context(command, prog)
    usage = " ".join(command.collect_usage_pieces(ctx))
    summary = (command.get_short_help_str(limit=200) or prog).rstrip(".")
    out = [
        f'.TH "{prog.upper()}" "1" "" "nsqcli {__version__}" "User Commands"',
        ".SH NAME",
        f"{_roff(prog)} \\- {_roff(summary)}",
        ".SH SYNOPSIS",
        f".B {_roff(prog)}",
        _roff(usage),
        ".SH DESCRIPTION",
        _paragraphs(command.help or ""),
    ]
    if isinstance(command, click.Group):
        out.append(".SH COMMANDS")
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            out += [".TP", f"\\fB{_roff(name)}\\fR", _roff(sub.get_short_help_str(limit=200) if sub else "")]
            if name in TOOLS and sub is not None:
                out.append(f"See \\fB{_roff(_script_for(name))}\\fR(1) for its options.")
    options = [p for p in command.get_params(ctx) if isinstance(p, click.Option)]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if arguments:
        out.append(".SH ARGUMENTS")
        for argument in arguments:
            out += [".TP", f"\\fI{_roff(argument.make_metavar(ctx))}\\fR",
                    _roff("Input files; - is standard input.")]
    out.append(".SH OPTIONS")
    for option in options:
        out += [".TP", _option_heading(option), _roff(_option_help(option))]
    envs = [(o.envvar, o) for o in options if o.envvar]
    if envs:
        out.append(".SH ENVIRONMENT")
        for env, option in envs:
            out += [".TP", f"\\fB{_roff(str(env))}\\fR", _roff(f"Default for {option.opts[-1]}.")]
    out.append(".SH EXIT STATUS")
    for status in statuses_listed(command.epilog) or list(EXIT_STATUS_TEXT):  # what it returns
        out += [".TP", f"\\fB{int(status)}\\fR", _roff(EXIT_STATUS_TEXT[status])]
    others = [s for s in list(SCRIPTS) + ["nsqcli"] + list(MAN_ONLY) if s != prog]
    out += [".SH SEE ALSO", ", ".join(f"\\fB{_roff(s)}\\fR(1)" for s in others)]
    return "\n".join(out) + "\n"


def _script_for(sub: str) -> str:
    for script, name in {**SCRIPTS, **MAN_ONLY}.items():
        if name == sub:
            return script
    return f"nsqcli-{sub}"


# ---- completions -------------------------------------------------------------------------------


def _options_of(command: click.Command) -> list[click.Option]:
    ctx = _context(command)
    return [p for p in command.get_params(ctx) if isinstance(p, click.Option)]


def _takes_value(option: click.Option) -> bool:
    return not option.is_flag and not option.count


def _choices(option: click.Option) -> list[str]:
    return list(option.type.choices) if isinstance(option.type, click.Choice) else []


def _is_path(option: click.Parameter) -> bool:
    return isinstance(option.type, (click.Path, click.File))


def render_bash(prog: str, command: click.Command) -> str:
    func = "_" + prog.replace("-", "_")
    words = sorted(name for o in _options_of(command) for name in o.opts + o.secondary_opts)
    cases = []
    for option in _options_of(command):
        if not _takes_value(option):
            continue
        pattern = "|".join(option.opts)
        if _choices(option):
            action = f'COMPREPLY=($(compgen -W "{" ".join(_choices(option))}" -- "$cur"))'
        elif _is_path(option):
            action = 'COMPREPLY=($(compgen -f -- "$cur"))'
        else:
            action = "COMPREPLY=()"
        cases.append(f"        {pattern}) {action}; return ;;")
    subcommands = ""
    if isinstance(command, click.Group):
        subcommands = " ".join(command.list_commands(click.Context(command)))
    lines = [
        f"# bash completion for {prog} (generated by scripts/gen_docs.py; do not edit)",
        f"{func}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    case "$prev" in',
        *cases,
        "    esac",
        f'    if [[ "$cur" == -* || -z "{subcommands}" && "$cur" == "" ]]; then',
        f'        COMPREPLY=($(compgen -W "{" ".join(words)}" -- "$cur"))',
        "    else",
        (f'        COMPREPLY=($(compgen -W "{subcommands}" -- "$cur"))' if subcommands
         else '        COMPREPLY=($(compgen -f -- "$cur"))'),
        "    fi",
        "}",
        f"complete -F {func} {prog}",
    ]
    return "\n".join(lines) + "\n"


def _zsh_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def render_zsh(prog: str, command: click.Command) -> str:
    specs = []
    for option in _options_of(command):
        help_text = _zsh_escape((option.help or "").split(". ")[0][:80])
        names = option.opts + option.secondary_opts
        group = "{" + ",".join(names) + "}" if len(names) > 1 else names[0]
        repeat = "*" if option.multiple or option.count else ""
        if _takes_value(option):
            if _choices(option):
                action = f":value:({' '.join(_choices(option))})"
            elif _is_path(option):
                action = ":file:_files"
            else:
                action = f":{_zsh_escape(option.metavar or option.name or 'value').lower()}: "
            specs.append(f"    '{repeat}'{group}'[{help_text}]{action}'")
        else:
            specs.append(f"    '{repeat}'{group}'[{help_text}]'")
    if isinstance(command, click.Group):
        subs = " ".join(command.list_commands(click.Context(command)))
        specs.append(f"    '1:command:({subs})'")
        specs.append("    '*::arg:_files'")
    elif any(isinstance(p, click.Argument) for p in command.params):
        specs.append("    '*:file:_files'")
    body = " \\\n".join(specs)
    return (f"#compdef {prog}\n# zsh completion for {prog} (generated by scripts/gen_docs.py; "
            f"do not edit)\n_arguments -s \\\n{body}\n")


def render_fish(prog: str, command: click.Command) -> str:
    lines = [f"# fish completion for {prog} (generated by scripts/gen_docs.py; do not edit)"]
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            desc = (sub.get_short_help_str(limit=60) if sub else "").replace("'", "\\'")
            lines.append(f"complete -c {prog} -n '__fish_use_subcommand' -f -a {name} -d '{desc}'")
    for option in _options_of(command):
        parts = [f"complete -c {prog}"]
        for name in option.opts + option.secondary_opts:
            parts.append(f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}")
        if _takes_value(option):
            parts.append("-r")
            if _choices(option):
                parts.append(f"-f -a '{' '.join(_choices(option))}'")
            elif not _is_path(option):
                parts.append("-f")
        desc = (option.help or "").split(". ")[0][:80].replace("'", "\\'")
        parts.append(f"-d '{desc}'")
        lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"


# ---- driver ------------------------------------------------------------------------------------


def render_all() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for prog, command in tools():
        files[ROOT / "man" / f"{prog}.1"] = render_man(prog, command)
        files[ROOT / "completions" / "bash" / prog] = render_bash(prog, command)
        files[ROOT / "completions" / "zsh" / f"_{prog}"] = render_zsh(prog, command)
        files[ROOT / "completions" / "fish" / f"{prog}.fish"] = render_fish(prog, command)
    for prog, command in tools(MAN_ONLY):
        files[ROOT / "man" / f"{prog}.1"] = render_man(prog, command)
    return files


def stale_files() -> list[Path]:
    return [path for path, text in render_all().items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in render_all().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
