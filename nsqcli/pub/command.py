"""nsq-pub: publish records from stdin, files or the command line to an NSQ topic.

A drop-in for Go's ``to_nsq`` (same flags) without its quirks: the final record is published
whole, any byte string delimits records, records go out in MPUB batches with several in flight,
and the exit status tells whether nsqd acknowledged every record.
"""

from __future__ import annotations

from typing import Any

import click

from nsqcli.cli.client_options import PRODUCER
from nsqcli.cli.console import Console, RateMeter
from nsqcli.cli.exit_codes import EXIT_STATUS_HELP, ExitStatus, ToolError, UsageError
from nsqcli.cli.exit_codes import publish_error_status
from nsqcli.cli.exit_codes import error_text
from nsqcli.cli.go_flags import tool_command
from nsqcli.cli.options import DELIMITER, DURATION, RATE, client_options, output_options, pop_console
from nsqcli.cli.options import pop_settings, user_agent, warn_settings
from nsqcli.cli.runner import Shutdown, exit_with, run_tool

PROG = "nsq-pub"
PROGRESS_INTERVAL = 0.5


@tool_command("pub", epilog=EXIT_STATUS_HELP)
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--topic", required=True, help="Topic to publish to.")
@click.option("-m", "--message", "messages", multiple=True, metavar="TEXT",
              help="Publish this message (repeatable) instead of reading input.")
@click.option("--delimiter", type=DELIMITER, default="\\n", show_default=True, metavar="BYTES",
              help=r"Record delimiter, any byte string; escapes such as \n \t \0 \x1e work.")
@click.option("-0", "--null", is_flag=True, help="Records are NUL-delimited (like find -print0).")
@click.option("--rate", type=RATE, default=None, metavar="N",
              help="Publish at most N records per second (0: no limit, as in to_nsq).")
@click.option("--defer", type=DURATION, default=None, metavar="DURATION",
              help="Deliver each record after this delay (DPUB), e.g. 30s or 5m.")
@click.option("--mode", type=click.Choice(["round-robin", "fan-out"]), default="round-robin",
              show_default=True,
              help="Several nsqd: spread batches (round-robin) or send every record to each "
              "(fan-out, Go to_nsq's behaviour).")
@click.option("--retry-timeout", type=DURATION, default="30s", show_default=True, metavar="DURATION",
              help="How long to reconnect and resend unacknowledged records before giving up.")
@click.option("--failed-file", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the records nsqd did not acknowledge here (same delimiter), for a rerun.")
@click.option("--skip-oversized", is_flag=True,
              help="Skip (and count) records larger than nsqd's max-msg-size instead of failing.")
@click.option("--progress/--no-progress", default=None,
              help="Progress line on stderr (default: when stderr is a terminal).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Most records per MPUB.")
@client_options(PRODUCER)
@output_options
def command(**params: Any) -> None:
    """Publish records to an NSQ topic.

    Records come from FILES ("-" is stdin; default stdin) split on --delimiter, or from
    --message. Empty records are skipped; a final record without a delimiter is published whole.
    Records go out in MPUB batches (DPUB with --defer). When the connection is lost, nsq-pub
    reconnects and resends what nsqd did not acknowledge until --retry-timeout, then exits 3
    saying how many records of how many were not acknowledged (--failed-file keeps them).

    Exit status 0 means nsqd acknowledged every record.
    """
    console = pop_console(params, PROG)
    settings = pop_settings(params, user_agent(PROG))
    warn_settings(settings, console)
    ctx = click.get_current_context()
    _check_params(ctx, params)
    _check_messages(ctx, params, settings.publisher_kwargs.get("max_msg_size"))
    delimiter = b"\0" if params["null"] else params["delimiter"]
    sources = list(params["files"]) or ["-"]
    messages = [m.encode("utf-8") for m in params["messages"]]
    stdin_prefix = _quick_publish(console, params, settings, sources, messages, delimiter)

    async def main(shutdown: Shutdown) -> ExitStatus:
        addresses = settings.nsqd_tcp_addresses or await discover_nsqds(settings)
        return await publish(console, shutdown, params, settings, addresses, sources, messages,
                             delimiter, stdin_prefix)

    run_tool(main, console)


def _quick_publish(console: Console, params: dict, settings: Any, sources: list[str],
                   messages: list[bytes], delimiter: bytes) -> bytes:
    """Exit 0 at once when a small complete input was published without the event loop;
    otherwise return the stdin bytes already read, for the full engine."""
    from nsqcli.pub import quick as pub_quick

    handoff = click.get_current_context().obj
    if isinstance(handoff, pub_quick.Pending):  # nsqcli.pub.fast tried already
        return handoff.data
    plain = not (params["progress"] or params["failed_file"] or settings.lookupd_http_addresses)
    if not plain or not pub_quick.eligible(len(settings.nsqd_tcp_addresses), settings.conn_kwargs,
                                           params["rate"], params["defer"]):
        return b""
    if not messages and sources != ["-"]:
        return b""
    records, pending = pub_quick.quick_records(messages, delimiter)
    if records is None:
        return pending.data
    limit = settings.publisher_kwargs.get("max_msg_size") or pub_quick.DEFAULT_MAX_MSG_SIZE
    pub_quick.publish_or_exit(console, settings.nsqd_tcp_addresses[0], params["topic"], records,
                              settings.conn_kwargs, limit)
    return pending.data


def _check_params(ctx: click.Context, params: dict) -> None:
    from nsqcli.lib.protocol.names import check_topic

    try:
        check_topic(params["topic"])
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param_hint="'--topic'") from None
    if params["messages"] and params["files"]:
        raise click.UsageError("give either --message or input FILES, not both", ctx=ctx)
    explicit_delimiter = ctx.get_parameter_source("delimiter") != click.core.ParameterSource.DEFAULT
    if params["null"] and explicit_delimiter:
        raise click.UsageError("give either -0/--null or --delimiter, not both", ctx=ctx)
    if params["defer"] is not None and params["defer"] < 0:
        raise click.BadParameter("must not be negative", ctx=ctx, param_hint="'--defer'")


def _check_messages(ctx: click.Context, params: dict, max_msg_size: int | None) -> None:
    """--message values are known now: refuse empty ones (nsqd does: E_BAD_MESSAGE) and, when
    max_msg_size is given, oversized ones, before anything is sent."""
    for number, message in enumerate(params["messages"], 1):
        size = len(message.encode("utf-8"))
        if not size:
            raise click.BadParameter(f"message {number} is empty (nsqd refuses empty messages)",
                                     ctx=ctx, param_hint="'--message'")
        if max_msg_size and size > max_msg_size and not params["skip_oversized"]:
            raise click.BadParameter(f"message {number} is {size} bytes, over max_msg_size "
                                     f"{max_msg_size}", ctx=ctx, param_hint="'--message'")


async def publish(console: Console, shutdown: Shutdown, params: dict, settings: Any,
                  addresses: list[str], sources: list[str], messages: list[bytes],
                  delimiter: bytes, stdin_prefix: bytes = b"") -> ExitStatus:
    from nsqcli.cli.console import forward_library_logs
    from nsqcli.lib.publisher import Publisher
    from nsqcli.pub.records import records_from

    forward_library_logs(console, demote=True)

    defer = params["defer"]
    publisher = Publisher(
        params["topic"], addresses, mode=params["mode"], rate=params["rate"],
        retry_timeout=params["retry_timeout"],
        defer_ms=None if defer is None else int(round(defer * 1000)),
        skip_oversized=params["skip_oversized"], batch_size=params["batch_size"],
        keep_failed=bool(params["failed_file"]), log=console.warning,
        **settings.publisher_kwargs, **settings.conn_kwargs,
    )
    await publisher.start()
    show_progress = params["progress"] if params["progress"] is not None else console.err_is_terminal
    meter = RateMeter()
    progress = _ProgressTask(console, publisher, meter) if show_progress else None
    error_line = _ErrorLine(console)
    input_error: OSError | None = None
    try:
        if messages:
            await publisher.publish(messages)
        else:
            try:
                draining = False
                async for records in records_from(sources, delimiter, shutdown, stdin_prefix):
                    await publisher.publish(records)
                    if publisher.stopped and not draining:
                        # the rest of the input is counted, and kept for --failed-file, so
                        # that "N of M" is the whole input and a rerun can finish the job
                        draining = True
                        error_line.show(publisher.report)
                        console.info("counting the rest of the input as not acknowledged")
                    if shutdown.requested:
                        break
            except OSError as exc:  # unreadable input: still account for what was sent
                input_error = exc
        report = await publisher.close()
    finally:
        if progress is not None:
            progress.stop()
    if progress is not None:
        progress.show_final()
    status = _finish(console, params, report, delimiter, error_line,
                     interrupted=shutdown.interrupted)
    if input_error is not None:
        console.error(error_text(input_error))
        status = max(status, ExitStatus.ERROR) if status != ExitStatus.NOT_ACKNOWLEDGED else status
    return status


def _finish(console: Console, params: dict, report: Any, delimiter: bytes,
            error_line: "_ErrorLine", interrupted: bool = False) -> ExitStatus:
    status = ExitStatus.SUCCESS
    saved_error = None  # the --failed-file could not be written: still report the counts
    if params["failed_file"]:
        try:
            _write_failed(params["failed_file"], report, delimiter)
        except ToolError as exc:
            saved_error = exc
    if report.skipped_oversized:
        console.warning(f"{report.skipped_oversized} oversized record(s) skipped")
    if report.error is not None:
        status = error_line.show(report)
    if report.given_up:
        saved = params["failed_file"] and saved_error is None
        where = f"; they are in {params['failed_file']}" if saved else ""
        console.error(f"{report.given_up} of {report.submitted} records were not "
                      f"acknowledged by nsqd{where}")
        if status == ExitStatus.SUCCESS:
            status = ExitStatus.NOT_ACKNOWLEDGED
    if saved_error is not None:
        console.error(saved_error.message)
        status = ExitStatus.ERROR
    # after Ctrl-C the count is what the user needs to know (else it is shown with -v)
    tell = console.notice if interrupted else console.info
    tell(f"{report.acknowledged} of {report.submitted} records acknowledged")
    return status


class _ErrorLine:
    """Why publishing stopped: printed once, however often it is asked for."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._shown = False

    def show(self, report: Any) -> ExitStatus:
        """Print ``report.error``'s line (the first time); its exit status."""
        status, message = publish_error_status(report.error)
        if not self._shown:
            self._console.error(message)
            self._shown = True
        return status


def _write_failed(path: str, report: Any, delimiter: bytes) -> None:
    try:
        with open(path, "wb") as handle:
            for record in report.failed_records():
                handle.write(record)
                handle.write(delimiter)
    except OSError as exc:
        try:  # records never hold the delimiter: the complete ones are counted by it
            with open(path, "rb") as handle:
                kept = f"only the first {handle.read().count(delimiter)} record(s) are in it"
        except OSError:
            kept = "it is incomplete"
        raise ToolError(f"cannot write --failed-file {path}: {exc.strerror} ({kept})") from None


class _ProgressTask:
    def __init__(self, console: Console, publisher: Any, meter: RateMeter) -> None:
        self._console = console
        self._publisher = publisher
        self._meter = meter
        import asyncio

        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            self._show()

    def _show(self) -> None:
        report = self._publisher.report
        self._console.progress(
            f"{report.submitted:,} records, {report.acknowledged:,} acknowledged, "
            f"{self._meter.rate(report.acknowledged):,.0f}/s")

    def stop(self) -> None:
        self._task.cancel()

    def show_final(self) -> None:
        self._show()
        self._console.end_progress()


async def discover_nsqds(settings: Any) -> list[str]:
    """nsqd TCP addresses of every producer that the nsqlookupds know (``/nodes``); their size
    limits (``/config``) become the publisher's unless --producer-opt set them."""
    from nsqcli.cli.lookupd_nodes import nodes_of_lookupds, nsqd_limits

    nodes = await nodes_of_lookupds(settings.lookupd_http_addresses)
    if not nodes:
        raise UsageError("no nsqd found: the nsqlookupds list no nodes (give --nsqd-tcp-address)")
    limits = await nsqd_limits([node.http_address for node in nodes if node.http_address])
    for option, value in limits.items():
        settings.publisher_kwargs.setdefault(option, value)
    return [node.tcp_address for node in nodes]


def main() -> None:
    command(prog_name=PROG)


if __name__ == "__main__":
    main()
