"""nsq-replay: publish archived messages (nsq-to-file output, Go nsq_to_file output) back to NSQ.

Inputs are files, directories, globs or stdin; plain or gzip (detected from content), raw or
jsonl (detected); replayed in file-name order through the publish engine of nsq-pub. See
:mod:`nsqcli.replay.engine` for the checkpoint and :mod:`nsqcli.replay.inputs` for topics.
"""

from __future__ import annotations

from typing import Any

import click

from nsqcli.archive.names import DEFAULT_DATETIME_FORMAT, DEFAULT_FILENAME_FORMAT
from nsqcli.cli.client_options import PRODUCER
from nsqcli.cli.exit_codes import EXIT_STATUS_HELP, ExitStatus, UsageError
from nsqcli.cli.go_flags import tool_command
from nsqcli.cli.options import DURATION, RATE, client_options, output_options, pop_console, pop_settings
from nsqcli.cli.options import user_agent, warn_settings

PROG = "nsq-replay"


def _usage(message: str) -> click.UsageError:
    return click.UsageError(message, ctx=click.get_current_context(silent=True))


def build_config(params: dict[str, Any]) -> Any:
    """The ReplayConfig for the command's parameters (click.UsageError for bad values)."""
    from nsqcli.archive.names import NamePattern
    from nsqcli.replay.engine import ReplayConfig
    from nsqcli.replay.inputs import InputError, TopicResolver, expand_inputs, parse_renames, parse_time
    from nsqcli.replay.timing import OriginalTiming

    try:
        renames = parse_renames(params["renames"])
        if renames and params["topic"]:
            raise InputError("--rename maps topics found in records or file names; "
                             "it has no effect with --topic")
        pattern = NamePattern(params["filename_format"], params["datetime_format"])
        resolver = TopicResolver(params["topic"], renames, pattern)
        since = parse_time(params["since"], "--since") if params["since"] else None
        until = parse_time(params["until"], "--until") if params["until"] else None
        if since is not None and until is not None and until <= since:
            raise InputError("--until must be later than --since")
        if params["speed"] is not None and params["timing"] != "original":
            raise InputError("--speed needs --timing original")
        timing = None
        if params["timing"] == "original":
            timing = OriginalTiming(params["speed"] if params["speed"] is not None else 1.0)
        inputs = expand_inputs(list(params["files"]), pattern)
    except (InputError, ValueError) as exc:
        raise _usage(str(exc)) from None
    defer = params["defer"]
    if defer is not None and defer < 0:
        raise _usage("--defer must not be negative")
    return ReplayConfig(
        inputs=inputs, resolver=resolver, format=params["record_format"], rate=params["rate"],
        defer_ms=None if defer is None else int(round(defer * 1000)), timing=timing,
        since_ns=since, until_ns=until, checkpoint=params["checkpoint"],
        dry_run=params["dry_run"], skip_bad=params["skip_bad"])


def precheck_topics(config: Any) -> None:
    """Refuse, before publishing anything, files whose topic cannot be told (no --topic, a name
    that is not an nsq-to-file name, and records that carry none)."""
    from nsqcli.archive.reader import ArchiveReader, ArchiveReadError

    resolver = config.resolver
    if resolver.topic is not None:
        return
    for path in config.inputs:
        if path == "-" or resolver.for_file(path) is not None:
            continue
        try:
            with ArchiveReader(path, config.format, skip_bad=True) as reader:
                first = next(iter(reader.chunks()), None)
        except ArchiveReadError:
            continue  # reported with its line when replayed
        if first is None:
            continue
        if first.records is None or (first.records and first.records[0].topic is None):
            raise UsageError(f"cannot tell the topic of the records in {path}: give --topic (its "
                             "name is not an nsq-to-file name and its records carry no topic)")


def print_dry_run(replay: Any, console: Any) -> None:
    totals = replay.totals
    lines = [f"dry run: {totals.files} file(s), {totals.records} record(s) read, "
             f"{sum(totals.per_topic.values())} to publish"]
    for topic, count in sorted(totals.per_topic.items()):
        lines.append(f"  {topic}: {count}")
    for label, value in (("already acknowledged (checkpoint)", totals.resumed),
                         ("files already done (checkpoint)", totals.files_skipped),
                         ("outside --since/--until", totals.filtered), ("bad records skipped", totals.bad)):
        if value:
            lines.append(f"  {label}: {value}")
    console.out.write(("\n".join(lines) + "\n").encode())
    console.out.flush()


async def run_replay(config: Any, params: dict[str, Any], settings: Any, console: Any,
                     shutdown: Any) -> ExitStatus:
    from nsqcli.cli.console import forward_library_logs
    from nsqcli.replay.engine import Replay, summarize

    forward_library_logs(console, demote=True)
    addresses: list[str] = list(settings.nsqd_tcp_addresses)
    if not config.dry_run and not addresses:
        from nsqcli.cli.lookupd_nodes import nodes_from_lookupds

        addresses = await nodes_from_lookupds(settings.lookupd_http_addresses)
        if not addresses:
            raise UsageError("no nsqd found: the nsqlookupds list no nodes (give --nsqd-tcp-address)")

    def make_publisher(topic: str, on_acknowledged: Any) -> Any:
        from nsqcli.publisher.engine import Publisher, PublisherConfig

        publisher_config = PublisherConfig(
            topic=topic, addresses=addresses, mode=params["mode"], conn_kwargs=settings.conn_kwargs,
            rate=config.rate, defer_ms=config.defer_ms, retry_timeout=params["retry_timeout"],
            skip_oversized=params["skip_oversized"], batch_count=params["batch_size"],
            **settings.publisher_kwargs)
        return Publisher(publisher_config, log=console.warning, on_acknowledged=on_acknowledged)

    replay = Replay(config, make_publisher, console, lambda: shutdown.requested)
    show = params["progress"] if params["progress"] is not None else console.err_is_terminal
    progress = None
    if show and console.verbosity >= 0:
        from nsqcli.replay.progress import ProgressBar

        progress = ProgressBar(replay, console.err)
        progress.start()
    try:
        try:
            await replay.run()
        finally:
            reports = await replay.close()
    finally:
        if progress is not None:
            progress.stop()
    if config.dry_run:
        print_dry_run(replay, console)
        return ExitStatus.SUCCESS
    return summarize(replay, reports, console, interrupted=shutdown.interrupted)


@tool_command("replay", epilog=EXIT_STATUS_HELP)
@click.argument("files", nargs=-1, type=click.Path(allow_dash=True))
@click.option("--topic", default=None,
              help="Publish everything to this topic (default: the topic in each jsonl record, "
              "else the one in the nsq-to-file file name).")
@click.option("--rename", "renames", multiple=True, metavar="OLD=NEW",
              help="Publish records of topic OLD to topic NEW (repeatable).")
@click.option("--format", "record_format", type=click.Choice(["raw", "jsonl"]), default=None,
              help="Record format (default: detected per file).")
@click.option("--rate", type=RATE, default=None, metavar="N",
              help="Publish at most N records per second (per topic; 0: no limit).")
@click.option("--timing", type=click.Choice(["fast", "original"]), default="fast", show_default=True,
              help="fast: as fast as nsqd takes them; original: keep the gaps between the jsonl "
              "records' timestamps (scaled by --speed).")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=None, metavar="X",
              help="With --timing original: replay X times faster (0.5 = half speed). Default 1.")
@click.option("--since", default=None, metavar="TIME",
              help="Only jsonl records stamped at or after TIME (ISO 8601, naive = local time, "
              "or Unix seconds).")
@click.option("--until", default=None, metavar="TIME", help="Only jsonl records stamped before TIME.")
@click.option("--defer", type=DURATION, default=None, metavar="DURATION",
              help="Deliver each record after this delay (DPUB).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Record what nsqd acknowledged in FILE; rerunning with it resumes without "
              "resending anything acknowledged.")
@click.option("--dry-run", is_flag=True, help="Read and validate everything, count, publish nothing.")
@click.option("--skip-bad", is_flag=True,
              help="Skip (and count) malformed records instead of stopping at the first one.")
@click.option("--mode", type=click.Choice(["round-robin", "fan-out"]), default="round-robin",
              show_default=True, help="Several nsqd: spread batches, or send every record to each.")
@click.option("--retry-timeout", type=DURATION, default="30s", show_default=True, metavar="DURATION",
              help="How long to reconnect and resend unacknowledged records before giving up.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Most records per MPUB.")
@click.option("--skip-oversized", is_flag=True,
              help="Skip (and count) records larger than nsqd's max-msg-size instead of failing.")
@click.option("--filename-format", default=DEFAULT_FILENAME_FORMAT, show_default=True,
              help="The nsq-to-file --filename-format the archive names were made with (to read "
              "their topic).")
@click.option("--datetime-format", default=DEFAULT_DATETIME_FORMAT, show_default=True,
              help="The nsq-to-file --datetime-format the archive names were made with.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@client_options(PRODUCER)
@output_options
def command(**params: Any) -> None:
    """Replay archived messages (FILES, directories or globs; - or nothing for stdin) to NSQ.

    Plain or gzip, raw (body + newline, as nsq-to-file and Go's nsq_to_file write) or jsonl
    (nsq-to-file --format jsonl), all detected. Exit status 0 means nsqd acknowledged every record.
    """
    from nsqcli.cli.runner import run_tool

    console = pop_console(params, PROG)
    settings = pop_settings(params, user_agent(PROG))
    warn_settings(settings, console)
    config = build_config(params)
    try:
        precheck_topics(config)
    except UsageError as exc:
        raise _usage(exc.message) from None

    async def main(shutdown: Any) -> ExitStatus:
        return await run_replay(config, params, settings, console, shutdown)

    run_tool(main, console)


def main() -> None:
    command(prog_name=PROG)


if __name__ == "__main__":
    main()
