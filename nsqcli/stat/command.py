"""nsq-stat: a live view of an NSQ cluster, from every nsqd's ``/stats``.

A stand-in for Go's ``nsq_stat`` (same flags) that shows the whole cluster unless narrowed:
:mod:`nsqcli.stat.poller` polls, :mod:`nsqcli.stat.model` turns the answers into rows (sums,
rates, trends), :mod:`nsqcli.stat.live` draws them on a terminal and :mod:`nsqcli.stat.plain`
writes them for scripts.
"""

from __future__ import annotations

from typing import Any

import click

from nsqcli.cli.exit_codes import ExitStatus, ToolError, exit_status_help
from nsqcli.cli.go_flags import tool_command
from nsqcli.cli.options import POSITIVE_DURATION, http_client_options, output_options
from nsqcli.cli.options import pop_console, pop_http_settings, user_agent
from nsqcli.cli.runner import Shutdown, run_tool
from nsqcli.cli.values import check_name

PROG = "nsq-stat"

EPILOG = exit_status_help(
    ExitStatus.SUCCESS, ExitStatus.ERROR, ExitStatus.USAGE,
    SUCCESS="0 success, also when stopped by Ctrl-C (SIGINT) or SIGTERM: stopping is how a "
    "live view ends",
    ERROR="1 with --count, no poll got an answer from any nsqd (or every nsqlookupd failed); "
    "or writing to stdout failed")


@tool_command("stat", epilog=EPILOG)
@click.option("--topic", default=None, help="Only this topic (default: every topic).")
@click.option("--channel", default=None,
              help="Only channels of this name (default: every channel, and each topic's own "
              "row).")
@click.option("--interval", type=POSITIVE_DURATION, default="2s", show_default=True,
              help="Time between polls (Go duration: 500ms, 2s, 1m; a bare number is seconds).")
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N",
              help="Poll N times, print plain rows (or JSON) and exit; the first poll has no "
              "rates. Default: until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per poll and line, for scripts and jq (schema above).")
@click.option("--per-nsqd", is_flag=True,
              help="One row per nsqd for each topic and channel instead of their sum.")
@http_client_options
@output_options
def command(**params: Any) -> None:
    """A live view of an NSQ cluster: depth, in flight, deferred, requeued, timed out,
    messages, rates, clients and paused state of every topic and channel.

    Polled from each nsqd's /stats every --interval and summed over nsqds (--per-nsqd: one
    row each). The nsqds are those given with --nsqd-http-address and those every --lookupd-http-address
    lists, asked again at each poll (default: 127.0.0.1:4151). An nsqd that does not answer is
    shown down, and stays in the view once seen. --topic and --channel narrow the view; rows
    are sorted by depth, topics with their channels.

    On a terminal, without --count or --json: a table redrawn after every poll, with the depth
    trend (red up arrow rising, green down arrow falling) and paused topics and channels marked.
    Otherwise (piped, or --count N): plain rows, a header then one line per topic and channel
    per poll, columns separated by spaces: time (HH:MM:SS), topic, channel ('(topic)' on the
    topic's own row), nsqd ('(all)' when summed), depth, mem, disk, inflt, def, req, t-o, msgs,
    in/s, out/s, clients, paused (yes, no, or k/n nsqds), change (of the depth since the
    previous poll); '-' when not known. nsqds that go down or come back are reported on stderr.

    --json prints one object per poll and line: poll (1, 2, ...), time (ISO 8601, UTC), nsqds
    and lookupds (lists of {address, error}, error null when it answered), and rows, each with
    topic, channel (null on the topic's own row), nsqd (null when summed), depth,
    memory_depth, backend_depth, in_flight, deferred, requeued, timed_out, clients (these five
    null on a topic's row), messages, paused (on any nsqd), paused_on and nsqds (counts of
    nsqds), rate_in, rate_out (per second, null on the first poll), depth_change and trend
    (rising, falling, steady; null on the first poll).

    Rates are per second between two polls of the same nsqd: in is the growth of the message
    count; out is what left for good (a channel: messages finished; a topic: messages handed
    to its channels), i.e. messages in minus the growth of depth, in-flight and deferred.
    """
    console = pop_console(params, PROG)
    ctx = click.get_current_context()
    for flag in ("topic", "channel"):
        if params[flag] is not None:
            try:
                check_name(f"--{flag}", params[flag], flag)
            except ValueError as exc:
                raise click.UsageError(str(exc), ctx=ctx) from None
    settings = pop_http_settings(params)
    live = params["count"] is None and not params["as_json"] and _is_terminal(console.out)

    async def main(shutdown: Shutdown) -> ExitStatus:
        return await watch(console, shutdown, params, settings, live)

    run_tool(main, console, stop_status=ExitStatus.SUCCESS)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _empty_text(params: dict) -> str:
    if params["topic"] and params["channel"]:
        return f"no channel {params['channel']} of topic {params['topic']} on the nsqds that answered"
    if params["topic"] or params["channel"]:
        kind = "topic" if params["topic"] else "channel"
        return f"no {kind} {params[kind]} on the nsqds that answered"
    return "no topics on the nsqds that answered"


def _make_view(console: Any, params: dict, live: bool) -> Any:
    if live:
        import sys

        from nsqcli.stat.live import LiveView

        return LiveView(sys.stdout, params["interval"], params["per_nsqd"], _empty_text(params))
    from nsqcli.stat.plain import PlainView

    return PlainView(console.out, params["as_json"])


async def watch(console: Any, shutdown: Shutdown, params: dict, settings: Any,
                live: bool) -> ExitStatus:
    """Poll until --count polls were shown or a signal came (see the command's help)."""
    import asyncio
    import time

    from nsqcli.cli.nsq_http import HttpSession
    from nsqcli.stat.model import Tracker
    from nsqcli.stat.plain import StateNotices
    from nsqcli.stat.poller import Poller

    loop = asyncio.get_running_loop()
    # -vv shows each request, except under the live table (stderr would scroll it)
    session = HttpSession(settings.timeouts, user_agent(PROG), trace=None if live else console.debug)
    poller = Poller(session, settings.nsqd_http_addresses, settings.lookupd_http_addresses,
                    params["topic"], params["channel"])
    tracker = Tracker(params["per_nsqd"])
    notices = StateNotices(console.warning, console.notice)
    stopped = asyncio.ensure_future(shutdown.wait())
    view = None
    last = None
    answered = False
    try:
        view = _make_view(console, params, live)
        next_poll = loop.time()
        number = 0
        while params["count"] is None or number < params["count"]:
            polling = asyncio.ensure_future(poller.poll())
            await asyncio.wait({polling, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not polling.done():  # stopped: a poll waiting for its timeouts is dropped
                polling.cancel()
                break
            number += 1
            last = tracker.report(number, time.time(), *polling.result())
            answered = answered or not last.failed
            if not live:
                notices.update(last)
            try:
                view.show(last)
            except BrokenPipeError:  # nsq-stat | head: the reader has what it wanted
                from nsqcli.cli.runner import silence_stdout

                silence_stdout()
                return ExitStatus.SUCCESS
            next_poll = max(next_poll + params["interval"], loop.time())
            if params["count"] is not None and number >= params["count"]:
                break
            await asyncio.wait({stopped}, timeout=next_poll - loop.time())
            if stopped.done():
                break
    finally:
        stopped.cancel()
        if view is not None:
            view.close()
        session.close()
    if params["count"] is not None and last is not None and not answered and not shutdown.interrupted:
        raise ToolError(_failure_text(last, params["count"]))
    return ExitStatus.SUCCESS


def _failure_text(report: Any, polls: int) -> str:
    failing = report.down or [(a, e) for a, e in report.lookupds if e is not None]
    address, error = failing[0]
    more = f" (and {len(failing) - 1} more)" if len(failing) > 1 else ""
    kind = "nsqd" if report.down else "nsqlookupd"
    return f"no nsqd answered in {polls} poll{'s' if polls > 1 else ''}: {kind} {address}: {error}{more}"


def main() -> None:
    command(prog_name=PROG)


if __name__ == "__main__":
    main()
