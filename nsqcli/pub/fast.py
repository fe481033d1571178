"""nsq-pub's entry point: the simplest command lines are published before click is imported.

click and the shared option machinery cost about 30 ms of a one-message run
(``nsq-pub --topic t -m hi``, ``echo hi | nsq-pub --topic t``), a third of its life. This module
recognises only ``--topic``, ``-m/--message``, one ``--nsqd-tcp-address`` and ``-q/--quiet``
(also in Go's flag syntax: ``-topic t``, ``-topic=t``), with no environment variable that an
option reads. For anything else, anything invalid, or a
quick publish that was not acknowledged, :func:`main` hands over to the click command, which
parses the whole command line as always (so help, errors and every other flag have one source)
and receives what was already read from stdin.
"""

from __future__ import annotations

import os
import sys

from nsqcli.cli.values import DEFAULT_NSQD_TCP_ADDRESS, parse_tcp_address

PROG = "nsq-pub"
#: Environment variables the click options read: when one is set, click decides.
OPTION_ENV_VARS = ("NSQD_TCP_ADDRESS", "NSQLOOKUPD_HTTP_ADDRESS", "NSQ_AUTH_SECRET")
#: The flags taken here, by name without dashes: in Go's syntax too (-topic x, -topic=x,
#: --topic=x, -m=x), read as nsqcli.cli.go_flags reads them for click (a test holds them equal).
_VALUE_FLAGS = {"topic": "topic", "m": "message", "message": "message",
                "nsqd-tcp-address": "address"}
_QUIET_FLAGS = ("q", "quiet")


class SimpleArgs:
    """A command line this module can publish by itself."""

    __slots__ = ("topic", "messages", "address", "quiet")

    def __init__(self, topic: str, messages: list[bytes], address: str, quiet: bool) -> None:
        self.topic = topic
        self.messages = messages  # empty: read stdin
        self.address = address
        self.quiet = quiet


def parse_simple(argv: list[str], environ: dict | os._Environ) -> SimpleArgs | None:
    """``argv`` as SimpleArgs when it uses only the flags above, validly; otherwise None."""
    if any(name in environ for name in OPTION_ENV_VARS):
        return None
    values: dict[str, list[str]] = {"topic": [], "message": [], "address": []}
    quiet = False
    index = 0
    while index < len(argv):
        token = argv[index]
        if not token.startswith("-") or token in ("-", "--"):
            return None
        name, equals, value = token[2 if token.startswith("--") else 1:].partition("=")
        if name in _QUIET_FLAGS and not equals:
            quiet = True
        elif name in _VALUE_FLAGS and (equals or index + 1 < len(argv)):
            if not equals:
                index += 1
                value = argv[index]
            values[_VALUE_FLAGS[name]].append(value)
        else:
            return None  # anything else (-mtext, -q=false, files, other flags): click decides
        index += 1
    return _validated(values, quiet)


def _validated(values: dict[str, list[str]], quiet: bool) -> SimpleArgs | None:
    from nsqcli.lib.protocol.names import valid_topic_name

    addresses = values["address"] or [DEFAULT_NSQD_TCP_ADDRESS]
    if not values["topic"] or len(addresses) != 1 or "," in addresses[0]:
        return None
    topic = values["topic"][-1]  # click keeps the last of a repeated single-value option
    try:
        address = parse_tcp_address(addresses[0], "nsqd TCP address")
        messages = [message.encode("utf-8") for message in values["message"]]
    except (ValueError, UnicodeEncodeError):
        return None
    if not valid_topic_name(topic) or not all(messages):
        return None
    return SimpleArgs(topic, messages, address, quiet)


def main() -> None:
    """The ``nsq-pub`` console script."""
    from nsqcli.pub import quick as pub_quick

    handoff = None
    args = parse_simple(sys.argv[1:], os.environ)
    if args is not None:
        handoff = pub_quick.publish_simple(PROG, args.address, args.topic, args.messages,
                                           args.quiet)
    from nsqcli.pub.command import command

    command(prog_name=PROG, obj=handoff)


if __name__ == "__main__":
    main()
