"""``nsqcli topic`` and ``nsqcli channel``: the click groups of the admin commands.

Each action reports one line per daemon on stdout (``nsqd 127.0.0.1:4151: deleted topic
events``); a daemon that failed is named on stderr with its HTTP status and nsqd's text, and the
command exits 1. See :mod:`nsqcli.admin.plan` for which calls go where.
"""

from __future__ import annotations

from typing import Any, Callable

import click

from nsqcli.admin.plan import ACTIONS, CREATE, DELETE, DESTRUCTIVE, EMPTY, PAUSE, UNPAUSE, Subject
from nsqcli.cli.exit_codes import ExitStatus, exit_status_help
from nsqcli.cli.go_flags import GoFlagGroup, tool_command
from nsqcli.cli.options import http_client_options, output_options, pop_console, pop_http_settings
from nsqcli.cli.values import check_name, user_agent

ADMIN_EXIT_STATUS_HELP = exit_status_help(
    ExitStatus.SUCCESS, ExitStatus.ERROR, ExitStatus.USAGE, ExitStatus.INTERRUPTED,
    SUCCESS="0 success (every nsqd and nsqlookupd asked did it)",
    ERROR="1 failure (an nsqd or nsqlookupd failed or answered an error: each is named, with "
    "its HTTP status; no nsqd had the topic or channel; the confirmation was declined)",
    USAGE="2 usage error (a bad name; delete or empty without a terminal and without --yes)")

_WHERE = ("The nsqds are those given with --nsqd-http-address and, with --lookupd-http-address, "
          "those nsqlookupd lists for the topic (default: the nsqd at 127.0.0.1:4151 when no "
          "nsqlookupd is given). Each "
          "nsqd's answer is reported on one line; one without the {kind} says so, which is no "
          "failure.")
_CONFIRM = ("On a terminal this asks for confirmation first, listing where it acts; without a "
            "terminal it refuses unless --yes is given.")

HELP = {
    ("topic", CREATE): "Create topics on nsqd, and register them in nsqlookupd.\n\nWith "
    "--nsqd-http-address, the topic is created on those nsqds. With --lookupd-http-address it "
    "is registered in every nsqlookupd, as nsqadmin does, so that consumers find it there (an "
    "nsqd creates it on the first publish or subscription); --all-nodes also creates it on "
    "every nsqd nsqlookupd knows (/nodes).",
    ("topic", DELETE): "Delete topics, with their channels and messages, from every nsqd that "
    "has them, then from nsqlookupd.\n\n" + _WHERE.format(kind="topic") + " The topic is then "
    "removed from every --lookupd-http-address that knows it (so it is not found there any "
    "more, and its channels do not come back when it is created again), unless an nsqd "
    "failed: that nsqd may still have it. " + _CONFIRM,
    ("topic", EMPTY): "Empty topics on every nsqd that has them: the messages the topic holds "
    "for its channels are dropped.\n\nA topic hands its messages to its channels at once, so "
    "it holds messages only while it has no channel or is paused; its channels keep theirs "
    "(see nsqcli channel empty). " + _WHERE.format(kind="topic") + " " + _CONFIRM,
    ("topic", PAUSE): "Pause topics on every nsqd that has them: published messages stay in "
    "the topic, and its channels get none until it is unpaused.\n\n"
    + _WHERE.format(kind="topic"),
    ("topic", UNPAUSE): "Unpause topics on every nsqd that has them: their messages flow to "
    "their channels again.\n\n" + _WHERE.format(kind="topic"),
    ("channel", CREATE): "Create channels of a topic on every nsqd that has the topic, and "
    "register them in nsqlookupd.\n\nOn an nsqd given with --nsqd-http-address the topic is "
    "created too, as a subscription would. With --lookupd-http-address the channel is created "
    "on the nsqds nsqlookupd lists for the topic and registered in every nsqlookupd, as "
    "nsqadmin does; --all-nodes creates topic and channel on every nsqd nsqlookupd knows. A "
    "new channel gets the messages published from then on.",
    ("channel", DELETE): "Delete channels, with their messages, from every nsqd that has "
    "them, then from nsqlookupd.\n\n" + _WHERE.format(kind="channel") + " Consumers of the "
    "channel are disconnected. The channel is then removed from every --lookupd-http-address "
    "that knows it, unless an nsqd failed. " + _CONFIRM,
    ("channel", EMPTY): "Empty channels on every nsqd that has them: their queued, in-flight "
    "and deferred messages are dropped.\n\n" + _WHERE.format(kind="channel") + " " + _CONFIRM,
    ("channel", PAUSE): "Pause channels on every nsqd that has them: their consumers get no "
    "message until they are unpaused (messages keep queuing).\n\n"
    + _WHERE.format(kind="channel"),
    ("channel", UNPAUSE): "Unpause channels on every nsqd that has them: delivery to their "
    "consumers resumes.\n\n" + _WHERE.format(kind="channel"),
}
SHORT_HELP = {
    CREATE: "Create {kind}s on nsqd and register them in nsqlookupd.",
    DELETE: "Delete {kind}s from every nsqd and nsqlookupd that has them.",
    EMPTY: "Drop the messages queued in {kind}s.",
    PAUSE: "Pause {kind}s on every nsqd that has them.",
    UNPAUSE: "Unpause {kind}s on every nsqd that has them.",
}
LIST_HELP = {
    "topic": "List the topics of the cluster, one per line, sorted: those every nsqlookupd "
    "knows (/topics) and those every --nsqd-http-address has (/stats; default: the nsqd at "
    "127.0.0.1:4151 when no nsqlookupd is given).",
    "channel": "List the channels of --topic, one per line, sorted: those every nsqlookupd has "
    "registered (/channels) and those the topic has on every --nsqd-http-address (/stats; "
    "default: the nsqd at 127.0.0.1:4151 when no nsqlookupd is given).",
}


def _prog(kind: str) -> str:
    return f"nsqcli {kind}"


def _checked(flag: str, name: str, kind: str = "topic") -> str:
    """``name`` if nsqd's naming rule allows it; a usage error (exit 2) naming ``flag`` if not."""
    try:
        return check_name(flag, name, kind)
    except ValueError as exc:
        raise click.UsageError(str(exc), ctx=click.get_current_context()) from None


def _subjects(params: dict[str, Any], kind: str) -> list[Subject]:
    """The topics or channels named on the command line."""
    names = list(dict.fromkeys(params.pop("names")))
    if kind == "topic":
        return [Subject(_checked("TOPIC", name)) for name in names]
    topic = _checked("--topic", params.pop("topic"))
    return [Subject(topic, _checked("CHANNEL", name, "channel")) for name in names]


def _decorated(callback: Callable[..., None], decorators: list[Any]) -> click.Command:
    for decorator in reversed(decorators):
        callback = decorator(callback)
    return callback  # type: ignore[return-value]


def _topic_option(kind: str) -> Callable[[Any], Any]:
    if kind == "topic":
        return lambda function: function
    return click.option("--topic", required=True, metavar="TOPIC",
                        help="The topic the channels belong to.")


def action_command(kind: str, action: str) -> click.Command:
    """``nsqcli <kind> <action> NAME...``."""
    def callback(**params: Any) -> None:
        from nsqcli.admin.run import run_action

        console = pop_console(params, _prog(kind))
        settings = pop_http_settings(params)
        subjects = _subjects(params, kind)
        run_action(action, subjects, settings, console, user_agent(_prog(kind)),
                   yes=params.pop("yes", False), dry_run=params.pop("dry_run"),
                   all_nodes=params.pop("all_nodes", False))

    decorators = [
        tool_command(action, epilog=ADMIN_EXIT_STATUS_HELP, help=HELP[kind, action],
                     short_help=SHORT_HELP[action].format(kind=kind)),
        click.argument("names", nargs=-1, required=True, metavar=f"{kind.upper()}..."),
        _topic_option(kind),
    ]
    if action == CREATE:
        decorators.append(click.option(
            "--all-nodes", is_flag=True, help="With --lookupd-http-address: create it on every "
            "nsqd nsqlookupd knows (/nodes), not only those that have the topic."))
    if action in DESTRUCTIVE:
        decorators.append(click.option("-y", "--yes", is_flag=True,
                                       help="Do not ask for confirmation."))
    decorators += [
        click.option("--dry-run", is_flag=True,
                     help="Say which nsqds and nsqlookupds would be asked what, and do nothing."),
        http_client_options, output_options,
    ]
    return _decorated(callback, decorators)


def list_command(kind: str) -> click.Command:
    def callback(**params: Any) -> None:
        from nsqcli.admin.run import run_list

        console = pop_console(params, _prog(kind))
        settings = pop_http_settings(params)
        topic = params.pop("topic", None)
        run_list(topic and _checked("--topic", topic), settings, console, user_agent(_prog(kind)))

    return _decorated(callback, [
        tool_command("list", epilog=ADMIN_EXIT_STATUS_HELP, help=LIST_HELP[kind],
                     short_help=f"List the {kind}s, one per line."),
        _topic_option(kind), http_client_options, output_options,
    ])


class AdminGroup(GoFlagGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # create, delete, empty, pause, unpause, list


def admin_group(kind: str) -> click.Group:
    @click.group(kind, cls=AdminGroup,
                 context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
                 help=f"Create, delete, empty, pause, unpause and list {kind}s across a cluster, "
                 "through the HTTP API of nsqd and nsqlookupd (what nsqadmin does).",
                 epilog=ADMIN_EXIT_STATUS_HELP)
    def group() -> None:
        pass

    for action in ACTIONS:
        group.add_command(action_command(kind, action))
    group.add_command(list_command(kind))
    return group


topic = admin_group("topic")
channel = admin_group("channel")
