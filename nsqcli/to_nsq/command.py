"""nsq-to-nsq: relay the messages of NSQ topics to other nsqds, as Go's ``nsq_to_nsq`` does.

The same flags, and a stronger promise: a source message is finished (FIN) only after the
destination acknowledged its copy, and requeued (REQ, never FIN) when the destination refused
it or could not be reached, so a relay stopped at any moment loses nothing (a copy may be sent
twice). Copies go out in MPUB batches with several in flight (:class:`nsqcli.lib.Publisher`).
The relay itself is :mod:`nsqcli.to_nsq.relay`; each destination topic is a
:class:`~nsqcli.to_nsq.destination.DestinationTopic`.
"""

from __future__ import annotations

from typing import Any

import click

from nsqcli.cli.client_options import CONSUMER, PRODUCER
from nsqcli.cli.exit_codes import ExitStatus, exit_status_help
from nsqcli.cli.go_flags import tool_command
from nsqcli.cli.options import DESTINATION, DURATION, SOURCE, ClientSettings, client_options
from nsqcli.cli.options import output_options, pop_console, pop_settings, user_agent
from nsqcli.cli.options import warn_settings
from nsqcli.cli.runner import Shutdown, run_tool
from nsqcli.to_nsq.publishers import MODES

PROG = "nsq-to-nsq"

EXIT_STATUS = exit_status_help(
    ExitStatus.ERROR, ExitStatus.USAGE, ExitStatus.INTERRUPTED,
    ERROR="1 failure: an error no retry fixes, on either side (a certificate that does not "
    "verify, AUTH refused, a peer that is not nsqd, the destination refusing the topic); what "
    "was held was answered first (FIN for what the destination acknowledged, REQ for the rest)",
    INTERRUPTED="130 stopped by SIGINT/SIGTERM after the drain: every message taken was "
    "finished (relayed or filtered out) or requeued; a relay ends no other way (an unreachable "
    "nsqd, on either side, is waited for)")


@tool_command("to-nsq", epilog=EXIT_STATUS)
@click.option("--topic", "topics", multiple=True, required=True,
              help="Topic to relay (repeatable).")
@click.option("--channel", default="nsq_to_nsq", show_default=True, help="Channel to consume.")
@click.option("--destination-topic", default=None,
              help="Publish every topic to this one (default: the topic's own name).")
@click.option("--mode", type=click.Choice(list(MODES)),
              default="round-robin", show_default=True,
              help="Several destination nsqds: spread batches over those that are up "
              "(round-robin; Go's hostpool and epsilon-greedy mean the same here) or send "
              "every message to each (fan-out: finished once every one acknowledged it).")
@click.option("--max-in-flight", type=click.IntRange(min=1), default=200, show_default=True,
              help="Messages taken from the source and not yet answered, per topic.")
@click.option("--require-json-field", default=None, metavar="FIELD",
              help="Only relay JSON objects with this key (others are finished, not relayed).")
@click.option("--require-json-value", default=None, metavar="VALUE",
              help="With --require-json-field: only relay when the key's value is this string, "
              "or this number.")
@click.option("--whitelist-json-field", "whitelist", multiple=True, metavar="FIELD",
              help="Relay JSON objects with only these keys (repeatable).")
@click.option("--retry-timeout", type=DURATION, default="10s", show_default=True,
              metavar="DURATION", help="How long to resend to an unreachable destination before "
              "requeueing the messages on the source (and backing off).")
@click.option("--progress/--no-progress", default=None,
              help="Progress line on stderr (default: when stderr is a terminal).")
@click.option("--status-every", type=click.IntRange(min=0), default=0, show_default=True,
              metavar="N", help="A status line every N messages relayed (0: none; Go's "
              "default, 250, logged timings).")
@client_options(CONSUMER)
@client_options(PRODUCER, DESTINATION)
@output_options
def command(**params: Any) -> None:
    """Relay the messages of NSQ topics to other nsqds.

    Messages of each --topic (channel --channel, from --nsqd-tcp-address or
    --lookupd-http-address, default 127.0.0.1:4150) are published to --destination-topic (or
    the same topic) on --destination-nsqd-tcp-address, or on the nsqds that
    --destination-lookupd-http-address lists. A message is finished (FIN) only after the
    destination acknowledged its copy, and requeued (REQ, never FIN) when the destination
    refused it or could not be reached for --retry-timeout: then the relay backs off and tries
    again, so nothing is lost (a copy may be published twice). Messages the JSON filters reject
    are finished without being relayed.

    The --tls*, --snappy, --deflate* and --auth-secret* flags (and --consumer-opt) are for the
    source; the same flags prefixed with --destination- (and --producer-opt) for the
    destination.

    SIGINT/SIGTERM stop taking messages, publish what is held, finish what the destination
    acknowledged, requeue the rest, print the counts and exit 130; a second signal exits at
    once (nsqd redelivers what was not answered).
    """
    console = pop_console(params, PROG)
    source = pop_settings(params, user_agent(PROG), side=SOURCE, role=CONSUMER)
    destination = pop_settings(params, user_agent(PROG), default_nsqd=False, side=DESTINATION,
                               role=PRODUCER)
    warn_settings(source, console)
    warn_settings(destination, console)
    config = _config(click.get_current_context(), params, source, destination)
    progress = params["progress"] if params["progress"] is not None else console.err_is_terminal

    async def main(shutdown: Shutdown) -> ExitStatus:
        from nsqcli.to_nsq.publishers import DestinationNsqds
        from nsqcli.to_nsq.relay import Relay

        config.progress = progress
        nsqds = DestinationNsqds(destination, params["mode"], config.retry_timeout, console.info)
        return await Relay(config, source, nsqds, console).run(shutdown)

    run_tool(main, console)


def _config(ctx: click.Context, params: dict[str, Any], source: ClientSettings,
            destination: ClientSettings) -> Any:
    from nsqcli.cli.values import check_name
    from nsqcli.to_nsq.json_filter import JsonFilter
    from nsqcli.to_nsq.relay import RelayConfig

    topics = list(dict.fromkeys(params["topics"]))
    try:
        for topic in topics:
            check_name("--topic", topic)
        check_name("--channel", params["channel"], "channel")
        if params["destination_topic"] is not None:
            check_name("--destination-topic", params["destination_topic"])
        json_filter = None
        if params["require_json_field"] or params["require_json_value"] or params["whitelist"]:
            json_filter = JsonFilter(params["require_json_field"], params["require_json_value"],
                                     params["whitelist"])
    except ValueError as exc:
        raise click.UsageError(str(exc), ctx=ctx) from None
    if not destination.nsqd_tcp_addresses and not destination.lookupd_http_addresses:
        raise click.UsageError("give --destination-nsqd-tcp-address or "
                               "--destination-lookupd-http-address", ctx=ctx)
    _refuse_loops(ctx, topics, params["destination_topic"], source, destination)
    return RelayConfig(topics, params["channel"], params["destination_topic"],
                       params["max_in_flight"], json_filter, params["retry_timeout"],
                       status_every=params["status_every"])


def _refuse_loops(ctx: click.Context, topics: list[str], destination_topic: str | None,
                  source: ClientSettings, destination: ClientSettings) -> None:
    """A topic relayed into itself on the same nsqd would circle for ever."""
    looping = [topic for topic in topics if (destination_topic or topic) == topic]
    same = (set(source.nsqd_tcp_addresses) & set(destination.nsqd_tcp_addresses)
            or set(source.lookupd_http_addresses) & set(destination.lookupd_http_addresses))
    if looping and same:
        raise click.UsageError(
            f"topic {looping[0]} would be relayed into itself on {sorted(same)[0]}: give "
            "--destination-topic or another destination", ctx=ctx)


def main() -> None:
    command(prog_name=PROG)


if __name__ == "__main__":
    main()
