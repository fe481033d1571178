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
sys.path.insert(0, str(ROOT / "scripts"))  # its sibling modules, also when loaded by file path

from nsqcli import __version__  # noqa: E402
from nsqcli.__main__ import TOOLS, cli, load_tool  # noqa: E402
from nsqcli.cli.exit_codes import EXIT_STATUS_HELP, ExitStatus, status_meanings  # noqa: E402
from nsqcli.cli.launch import TOOLS as TOOL_TABLE  # noqa: E402

from click_introspect import context, is_path, options_of, subcommands  # noqa: E402
from gen_completions import render_bash, render_fish, render_zsh  # noqa: E402

# standalone script name -> umbrella subcommand
SCRIPTS = {tool.script: tool.subcommand for tool in TOOL_TABLE if tool.script}

#: The EXIT STATUS section says what a tool's --help epilog says (nsqcli.cli.exit_codes.
#: exit_status_help); a status the tool gives no meaning of its own is told at more length here.
EXIT_STATUS_TEXT = {
    ExitStatus.SUCCESS: "success (nsq-pub/nsq-replay: every record was acknowledged by nsqd)",
    ExitStatus.ERROR: "failure: unreachable nsqd, an E_* error from nsqd, an I/O error",
    ExitStatus.USAGE: "usage error: bad flags or arguments",
    ExitStatus.NOT_ACKNOWLEDGED: "some records were not acknowledged by nsqd (the count is "
    "printed; --failed-file holds them)",
    ExitStatus.INTERRUPTED: "interrupted by SIGINT or SIGTERM (after a graceful drain)",
}
_GENERIC_MEANINGS = status_meanings(EXIT_STATUS_HELP)

MAN_ONLY = {  # subcommands without a script of their own
    f"nsqcli-{tool.subcommand}": tool.subcommand for tool in TOOL_TABLE if not tool.script}

#: The EXAMPLES section of each man page: (what it does, command line). A test parses every
#: nsqcli command line in them with the tool's own click command.
EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "nsq-tail": [
        ("Print 10 messages of topic events from channel audit, each finished (FIN) after its line "
         "was written, then exit:", "nsq-tail --topic events --channel audit -n 10"),
        ("Follow two topics found through nsqlookupd, each line prefixed with its topic:",
         "nsq-tail --topic events --topic alerts --lookupd-http-address 127.0.0.1:4161 "
         "--print-topic"),
        ("One JSON object per message (topic, id, attempts, timestamp, body):",
         "nsq-tail --topic events --channel audit -n 5 --format json"),
        ("A command line written for Go's nsq_tail, unchanged but for the name:",
         "nsq-tail -topic=events -channel=audit -n=1 -nsqd-tcp-address=127.0.0.1:4150"),
    ],
    "nsq-pub": [
        ("Publish one record per line; exit 0 only when nsqd acknowledged every one:",
         "seq 1000 | nsq-pub --topic events"),
        ("Publish two messages given on the command line:", "nsq-pub --topic events -m hello -m world"),
        ("NUL-delimited records, at most 100 per second, keeping what nsqd did not acknowledge:",
         "find . -print0 | nsq-pub --topic files -0 --rate 100 --failed-file failed.bin"),
        ("Deliver a message in five minutes (DPUB):", "nsq-pub --topic reminders --defer 5m -m 'wake up'"),
        ("A command line written for Go's to_nsq (add --mode fan-out to send every record to each "
         "nsqd, as to_nsq does):",
         "printf 'a,b,' | nsq-pub -topic events -delimiter , -rate 0 -nsqd-tcp-address 127.0.0.1:4150"),
    ],
    "nsq-to-file": [
        ("Archive topic events to gzip files under ./archive, finishing each message once it is "
         "on disk (at least every second):",
         "nsq-to-file --topic events --output-dir archive --gzip --sync-interval 1s"),
        ("Every topic whose name starts with orders, found through nsqlookupd, one file an hour:",
         "nsq-to-file --lookupd-http-address 127.0.0.1:4161 --topic-pattern '^orders' "
         "--output-dir archive --rotate-interval 1h"),
        ("Lossless records (JSON lines with timestamps) for nsq-replay --timing original:",
         "nsq-to-file --topic events --output-dir archive --format jsonl"),
        ("A command line written for Go's nsq_to_file:",
         "nsq-to-file -topic=events -output-dir=archive -gzip -gzip-level=9 -sync-interval=1m0s "
         "-log-level=warn"),
    ],
    "nsq-replay": [
        ("Replay gzip archives of nsq-to-file to another topic, at most 5000 records a second:",
         "nsq-replay 'archive/events.*.log.gz' --topic events-replayed --rate 5000"),
        ("Keep the original gaps between jsonl records, ten times faster:",
         "nsq-replay archive/ --timing original --speed 10"),
        ("Resumable: a rerun with the same checkpoint sends nothing that nsqd acknowledged:",
         "nsq-replay 'archive/*.gz' --checkpoint replay.ckpt"),
        ("Check an archive from standard input without publishing:",
         "zcat old.log.gz | nsq-replay - --topic events --dry-run"),
    ],
    "nsq-stat": [
        ("Watch every topic and channel of the nsqds that nsqlookupd knows, redrawn every 2 "
         "seconds (Ctrl-C exits 0):", "nsq-stat --lookupd-http-address 127.0.0.1:4161"),
        ("Five plain rows for one channel, a second apart:",
         "nsq-stat --topic events --channel audit --count 5 --interval 1s"),
        ("The depth of every channel, from one poll in JSON:",
         "nsq-stat --json --count 1 | jq -r '.rows[] | select(.channel) | "
         "\"\\(.topic)/\\(.channel) \\(.depth)\"'"),
        ("A command line written for Go's nsq_stat:",
         "nsq-stat -topic=events -channel=audit -nsqd-http-address=127.0.0.1:4151 -interval=5s "
         "-count=3"),
    ],
    "nsq-to-nsq": [
        ("Relay topic events from the local nsqd to another one, finishing each message once "
         "the other nsqd acknowledged its copy:",
         "nsq-to-nsq --topic events --destination-nsqd-tcp-address 10.0.0.2:4150"),
        ("Copy two topics into one, found through nsqlookupd on both sides, to every "
         "destination nsqd:",
         "nsq-to-nsq --topic clicks --topic views --destination-topic events "
         "--lookupd-http-address 127.0.0.1:4161 --destination-lookupd-http-address "
         "10.0.0.2:4161 --mode fan-out"),
        ("Only JSON objects whose kind is click, with two of their keys:",
         "nsq-to-nsq --topic events --destination-topic clicks --destination-nsqd-tcp-address "
         "127.0.0.1:4150 --require-json-field kind --require-json-value click "
         "--whitelist-json-field kind --whitelist-json-field user"),
        ("To an nsqd that requires TLS (its certificate verified by the system's CAs) and AUTH, "
         "the secret typed in and kept off the command line:",
         "read -rs NSQ_DESTINATION_AUTH_SECRET && export NSQ_DESTINATION_AUTH_SECRET && "
         "nsq-to-nsq --topic events --destination-nsqd-tcp-address nsqd.example.com:4150 "
         "--destination-tls"),
        ("A command line written for Go's nsq_to_nsq:",
         "nsq-to-nsq -topic=events -channel=relay -nsqd-tcp-address=127.0.0.1:4150 "
         "-destination-nsqd-tcp-address=10.0.0.2:4150 -mode=hostpool -max-in-flight=500"),
    ],
    "nsqcli": [
        ("Start the embedded nsqd and nsqlookupd in the background:", "nsqcli dev-server &"),
        ("The tools as subcommands (the same options as nsq-tail, nsq-pub, ...):",
         "nsqcli pub --topic events -m hello && nsqcli tail --topic events -n 1"),
    ],
    "nsqcli-topic": [
        ("Every topic nsqlookupd knows, one per line:",
         "nsqcli topic list --lookupd-http-address 127.0.0.1:4161"),
        ("Pause topic events on every nsqd that has it (one line per nsqd), and unpause it:",
         "nsqcli topic pause events --lookupd-http-address 127.0.0.1:4161 && "
         "nsqcli topic unpause events --lookupd-http-address 127.0.0.1:4161"),
        ("Delete topic events from every nsqd and nsqlookupd without asking (a script):",
         "nsqcli topic delete events --yes --lookupd-http-address 127.0.0.1:4161"),
        ("What a delete would ask of which daemon, without doing it:",
         "nsqcli topic delete events --dry-run --lookupd-http-address 127.0.0.1:4161"),
        ("Create topic orders on two nsqds, in Go's flag syntax:",
         "nsqcli topic create orders -nsqd-http-address=127.0.0.1:4151 "
         "-nsqd-http-address=127.0.0.1:4251"),
    ],
    "nsqcli-channel": [
        ("The channels of topic events, one per line:",
         "nsqcli channel list --topic events --lookupd-http-address 127.0.0.1:4161"),
        ("Create channel audit before anything is published, so that it gets every message:",
         "nsqcli channel create --topic events audit"),
        ("Stop delivery to the consumers of channel audit, then resume it:",
         "nsqcli channel pause --topic events audit && nsqcli channel unpause --topic events audit"),
        ("Drop every message queued, in flight or deferred on channel audit, without asking:",
         "nsqcli channel empty --topic events audit -y"),
    ],
    "nsqcli-dev-server": [
        ("nsqd on 127.0.0.1:4150 (HTTP 4151) and nsqlookupd on 4160/4161, in memory:",
         "nsqcli dev-server"),
        ("nsqd alone on free ports, printed at start:",
         "nsqcli dev-server --tcp-address 127.0.0.1:0 --http-address 127.0.0.1:0 --no-lookupd"),
        ("Small limits to test a client against:",
         "nsqcli dev-server --max-msg-size 4096 --msg-timeout 10s --max-rdy-count 50 -v"),
    ],
}

NSQADMIN = ("Does what nsqadmin's topic and channel pages do, with the same calls to nsqd's and "
            "nsqlookupd's HTTP API, and takes nsqadmin's --nsqd-http-address, "
            "--lookupd-http-address, --http-client-connect-timeout and "
            "--http-client-request-timeout. An nsqd without the topic or channel is reported and "
            "skipped, where nsqadmin leaves it out silently; a delete keeps nsqlookupd's "
            "registrations when an nsqd failed, where nsqadmin removes them anyway.")

#: The COMPATIBILITY section: the Go app a tool stands in for, and how it differs.
GO_APPS = {
    "nsq-tail": "Takes every flag of Go's nsq_tail. -n is a total across topics, and a message "
    "is finished only after its line was written.",
    "nsq-pub": "Takes every flag of Go's to_nsq; -rate 0 means no limit, as there. With several "
    "-nsqd-tcp-address, records are spread over them; to_nsq sends every record to each: add "
    "--mode fan-out for that. The delimiter may be any byte string, and a last record without "
    "one is published whole.",
    "nsq-to-file": "Takes every flag of Go's nsq_to_file; -log-level debug, info, warn, "
    "error and fatal are -vv, -v, the default, -q and -q.",
    "nsq-stat": "Takes every flag of Go's nsq_stat. -topic and -channel are optional (without "
    "them, the whole cluster); -nsqd-http-address and -lookupd-http-address may be given "
    "together, and as URLs. -count N polls N times and prints each poll, the first without "
    "rates (nsq_stat polls N+1 times and prints N). The out rate counts messages finished; "
    "nsq_stat's egress also counts those delivered and still in flight.",
    "nsq-to-nsq": "Takes every flag of Go's nsq_to_nsq. A message is finished only once the "
    "destination acknowledged its copy, and requeued, never finished, when the destination "
    "refused it or stayed unreachable; copies go out in MPUB batches. --mode hostpool and "
    "epsilon-greedy (Go's default is hostpool) mean round-robin here: batches go to the nsqds "
    "that are up, in turn. A message without the --require-json-field is filtered out even "
    "when a --require-json-value is given (nsq_to_nsq requeues it with backoff until "
    "max_attempts drops it); --require-json-value without --require-json-field is refused. "
    "--status-every N prints the counts every N messages relayed (0, the default here, "
    "prints none; nsq_to_nsq logs timings every 250). The destination's TLS, compression and "
    "AUTH have their own --destination-* flags as well as --producer-opt; "
    "--destination-lookupd-http-address is new.",
    "nsqcli-topic": NSQADMIN,
    "nsqcli-channel": NSQADMIN,
}

GO_SYNTAX = (
    "Options also take Go's flag syntax, so that command lines written for the Go apps run "
    "unchanged: one or two dashes (-topic, --topic), the value after = or as the next word "
    "(-topic=x, -topic x), booleans as -gzip or -gzip=true|false|1|0|t|f (also T, F, TRUE, "
    "FALSE, True, False). A single-dash word that names an option is that option (-mode is "
    "--mode); any other is a group of short options as usual (-vv, -n5, -0q). -n=5 and -m=x "
    "are Go's -flag=value. The go-nsq options of --consumer-opt and --producer-opt that have "
    "no counterpart here are accepted with a warning that they change nothing."
)


def tools(table: dict[str, str] = SCRIPTS) -> Iterator[tuple[str, click.Command]]:
    """(program name, click command) of every available tool, the umbrella included."""
    for script, sub in table.items():
        command = load_tool(sub)
        if command is not None:
            yield script, command
    if table is SCRIPTS:
        yield "nsqcli", cli


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
    ctx = context(command, prog)
    usage = " ".join(command.collect_usage_pieces(ctx))
    summary = (command.get_short_help_str(limit=200) or prog).rstrip(".")
    out = [
        f'.TH "{prog.upper()}" "1" "" "nsqcli {__version__}" "User Commands"',
        ".SH NAME",
        f"{_roff(prog)} \\- {_roff(summary)}",
        ".SH SYNOPSIS",
        f".B {_roff(prog.replace('-', ' ', 1) if prog in MAN_ONLY else prog)}",
        _roff(usage),
        ".SH DESCRIPTION",
        _paragraphs(command.help or ""),
    ]
    options = [p for p in command.get_params(ctx) if isinstance(p, click.Option)]
    used_by: dict[str, list[str]] = {}  # option -> the subcommands taking it (nested groups)
    if isinstance(command, click.Group) and prog in MAN_ONLY:
        out += _subcommand_sections(prog, command, ctx)
        options, used_by = _subcommand_options(command, ctx)
    elif isinstance(command, click.Group):
        out.append(".SH COMMANDS")
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            out += [".TP", f"\\fB{_roff(name)}\\fR", _roff(sub.get_short_help_str(limit=200) if sub else "")]
            if name in TOOLS and sub is not None:
                out.append(f"See \\fB{_roff(_script_for(name))}\\fR(1) for its options.")
    arguments = [p for p in command.params if isinstance(p, click.Argument) and is_path(p)]
    if arguments:
        out.append(".SH ARGUMENTS")
        for argument in arguments:
            out += [".TP", f"\\fI{_roff(argument.make_metavar(ctx))}\\fR",
                    _roff("Input files; - is standard input.")]
    out.append(".SH OPTIONS")
    for option in options:
        subs = used_by.get(option.name or "")
        only = f" (only {', '.join(subs)})" if subs else ""
        out += [".TP", _option_heading(option), _roff(_option_help(option) + only)]
    envs = [(o.envvar, o) for o in options if o.envvar]
    if envs:
        out.append(".SH ENVIRONMENT")
        for env, option in envs:
            out += [".TP", f"\\fB{_roff(str(env))}\\fR", _roff(f"Default for {option.opts[-1]}.")]
    out.append(".SH COMPATIBILITY")
    if prog in GO_APPS:
        out += [_roff(GO_APPS[prog]), ".PP"]
    out.append(_roff(GO_SYNTAX))
    out.append(".SH EXIT STATUS")
    for status, text in _exit_statuses(command):
        out += [".TP", f"\\fB{int(status)}\\fR", _roff(text)]
    out.append(".SH EXAMPLES")
    for what, line in EXAMPLES[prog]:
        out += [".PP", _roff(what), ".PP", ".RS 4", ".nf", _roff(line), ".fi", ".RE"]
    others = [s for s in list(SCRIPTS) + ["nsqcli"] + list(MAN_ONLY) if s != prog]
    out += [".SH SEE ALSO", ", ".join(f"\\fB{_roff(s)}\\fR(1)" for s in others)]
    return "\n".join(out) + "\n"


def _exit_statuses(command: click.Command) -> list[tuple[ExitStatus, str]]:
    """The statuses the command's epilog lists (what it returns), each with its meaning there,
    or the longer generic text when it has none of its own."""
    meanings = status_meanings(command.epilog) or _GENERIC_MEANINGS
    return [(status, EXIT_STATUS_TEXT[status] if meaning == _GENERIC_MEANINGS[status] else meaning)
            for status, meaning in meanings.items()]


def _subcommand_sections(prog: str, group: click.Group, ctx: click.Context) -> list[str]:
    """COMMANDS of a page for a group of subcommands (nsqcli topic): each one's synopsis and
    description."""
    out = [".SH COMMANDS"]
    for name, sub in subcommands(group):
        sub_ctx = click.Context(sub, info_name=name, parent=ctx)
        usage = " ".join(sub.collect_usage_pieces(sub_ctx))
        out += [f".SS {_roff(name)}", f".B {_roff(prog.replace('-', ' '))} {_roff(name)}",
                _roff(usage), ".PP", _paragraphs(sub.help or "")]
    return out


def _subcommand_options(group: click.Group, ctx: click.Context
                        ) -> tuple[list[click.Option], dict[str, list[str]]]:
    """Every subcommand's options, once each, and the subcommands of those not all take."""
    options: dict[str, click.Option] = {}
    users: dict[str, list[str]] = {}
    subs = subcommands(group)
    for name, sub in subs:
        for option in options_of(sub):
            options.setdefault(option.name or "", option)
            users.setdefault(option.name or "", []).append(name)
    partial = {key: names for key, names in users.items() if len(names) < len(subs)}
    return list(options.values()), partial


def _script_for(sub: str) -> str:
    for script, name in {**SCRIPTS, **MAN_ONLY}.items():
        if name == sub:
            return script
    return f"nsqcli-{sub}"


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
