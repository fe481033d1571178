"""nsq-tail: print messages of one or more NSQ topics to stdout.

A drop-in for Go's ``nsq_tail`` (same flags), with guarantees it lacks: a message is FINed
only after its line reached stdout, and ``-n`` is a total across topics (exactly n printed, each
FINed, then exit 0) that nsqd is never allowed to exceed: RDY is capped by what remains to be
printed (:mod:`nsqcli.tail.budget`), so no extra message is taken and requeued. Output is
written in batches (one write per loop iteration, not a syscall per message). A closed pipe
(``nsq-tail ... | head -3``) exits quietly with 0; lines written into the pipe before the reader
closed it were FINed (a pipe holds many lines: use -n for an exact count), what was not
written yet is requeued.
"""

from __future__ import annotations

import random
from typing import Any

import click

from nsqcli.cli.client_options import CONSUMER
from nsqcli.cli.exit_codes import CONSUMER_EXIT_STATUS_HELP, ExitStatus
from nsqcli.cli.go_flags import tool_command
from nsqcli.cli.options import client_options, output_options, pop_console, pop_settings, user_agent
from nsqcli.cli.options import warn_settings
from nsqcli.cli.runner import Shutdown, run_tool, unanswered_wait

PROG = "nsq-tail"


def default_channel() -> str:
    return f"tail{random.randint(0, 999_999):06d}#ephemeral"


@tool_command("tail", epilog=CONSUMER_EXIT_STATUS_HELP)
@click.option("--topic", "topics", multiple=True, required=True,
              help="Topic to consume (repeatable).")
@click.option("--channel", default=None,
              help="Channel to consume from (default: a random tail<6 digits>#ephemeral).")
@click.option("--max-in-flight", type=click.IntRange(min=1), default=200, show_default=True,
              help="Messages in flight at once, per topic (lowered to -n when smaller).")
@click.option("-n", "count", type=click.IntRange(min=0), default=0, metavar="N",
              help="Exit after printing N messages in total across topics (0 = forever).")
@click.option("--print-topic", is_flag=True, help="Prefix each line with the topic and ' | '.")
@click.option("--format", "output_format", type=click.Choice(["raw", "json"]), default="raw",
              show_default=True,
              help="raw: the body and a newline. json: one object per line with topic, id, "
              "attempts, timestamp and body (or body_base64 when not UTF-8).")
@client_options(CONSUMER)
@output_options
def command(**params: Any) -> None:
    """Print the messages of NSQ topics to stdout, one per line.

    A message is finished (FIN) only after its line was written to stdout; with -n exactly N
    messages are taken from nsqd in total across topics (RDY never lets nsqd send more, so none
    is requeued), printed and finished. A closed pipe ('nsq-tail ... | head -3') exits
    quietly with 0: the lines written into the pipe before the reader closed it were FINed,
    shown or not (a pipe holds many lines; use -n 3 to take exactly 3), and only what was
    not written yet is requeued. SIGINT/SIGTERM finish what is in flight and exit 130; a
    second signal exits at once.
    """
    console = pop_console(params, PROG)
    settings = pop_settings(params, user_agent(PROG))
    warn_settings(settings, console)
    ctx = click.get_current_context()
    _check_names(ctx, params)
    channel = params["channel"] or default_channel()

    async def main(shutdown: Shutdown) -> ExitStatus:
        from nsqcli.tail.output import TailOutput, make_formatter

        output = TailOutput(console.out, make_formatter(params["output_format"], params["print_topic"]),
                            params["count"])
        return await consume(console, shutdown, settings, params, channel, output)

    run_tool(main, console)


def _check_names(ctx: click.Context, params: dict) -> None:
    from nsqcli.lib.protocol.names import check_channel, check_topic

    try:
        for topic in params["topics"]:
            check_topic(topic)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param_hint="'--topic'") from None
    if params["channel"] is not None:
        try:
            check_channel(params["channel"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param_hint="'--channel'") from None


async def consume(console: Any, shutdown: Shutdown, settings: Any, params: dict, channel: str,
                  output: Any) -> ExitStatus:
    import asyncio

    from nsqcli.cli.console import forward_library_logs
    from nsqcli.cli.consumer_guard import FatalConnectionGuard

    forward_library_logs(console)
    # exit 1 when every nsqd fails in a way no retry fixes (bad TLS, AUTH refused, not an nsqd)
    guard = FatalConnectionGuard(warn=console.warning)
    reader_kwargs: dict[str, Any] = {"max_tries": 0}
    reader_kwargs.update(settings.reader_kwargs)
    max_in_flight = reader_kwargs.pop("max_in_flight", params["max_in_flight"])
    if params["count"]:
        max_in_flight = min(max_in_flight, params["count"])
    output.batch_size = max(1, max_in_flight // 2)  # write+FIN halfway: nsqd refills meanwhile
    topics = list(dict.fromkeys(params["topics"]))
    budget = None
    if params["count"]:  # -n: nsqd may never send more than remains to be printed
        from nsqcli.tail.budget import IDLE_AFTER, InFlightBudget

        several_nsqds = len(settings.nsqd_tcp_addresses) > 1 or bool(settings.lookupd_http_addresses)
        budget = output.budget = InFlightBudget(params["count"], hold=several_nsqds)
        # no topic's RDY alone takes more than its part of N (the budget caps the total)
        max_in_flight = min(max_in_flight, -(-params["count"] // len(topics)))
        # RDY left on an nsqd without messages moves within a second or two (the Reader's
        # defaults, 10 s idle and 5 s checks, suit endless consumers)
        reader_kwargs.setdefault("low_rdy_idle_timeout", IDLE_AFTER)
        reader_kwargs.setdefault("rdy_redistribute_interval", IDLE_AFTER / 2)
    readers = []
    checking = None
    try:
        for topic in topics:
            reader = guard.reader(
                topic, channel, output.handler(topic), nsqd_tcp_addresses=settings.nsqd_tcp_addresses,
                lookupd_http_addresses=settings.lookupd_http_addresses, max_in_flight=max_in_flight,
                **reader_kwargs, **settings.conn_kwargs,
            )
            readers.append(reader)
            if budget is not None:
                budget.attach(topic, reader)
        if budget is not None:
            from tornado.ioloop import PeriodicCallback

            checking = PeriodicCallback(budget.check, IDLE_AFTER * 1000 / 5)
            checking.start()
        console.info(f"consuming {', '.join(params['topics'])} on channel {channel}")
        shutdown.add_callback(output.stop)
        shutdown.describe_wait(lambda: unanswered_wait(readers))
        await guard.run(output.finished())
    finally:
        if checking is not None:
            checking.stop()
        output.stop()
        await asyncio.gather(*(_close(reader) for reader in readers))
        guard.close()
    if output.pipe_closed:
        from nsqcli.cli.runner import silence_stdout

        silence_stdout()
        return ExitStatus.SUCCESS
    if output.write_error is not None:
        raise output.write_error
    return ExitStatus.SUCCESS


async def _close(reader: Any) -> None:
    result = reader.close()
    if result is not None and hasattr(result, "__await__"):
        await result


def main() -> None:
    command(prog_name=PROG)


if __name__ == "__main__":
    main()
