"""A tool started with stdout closed (``>&-``) and library errors forwarded to stderr: one line
each, with what went wrong (issue 13, item 2)."""

from __future__ import annotations

import io
import logging
import os
import subprocess

from nsqcli.cli.console import Console, forward_library_logs
from nsqcli.cli.exit_codes import ExitStatus
from nsqcli.cli.runner import run_to_status

from polling import tool


def test_nsq_tail_with_stdout_closed_exits_1_at_once_and_consumes_nothing(nsqd):
    nsqd.create_topic("closed")
    nsqd.create_channel("closed", "c")
    nsqd.mpub("closed", [b"m%d" % i for i in range(10)])
    env = {k: v for k, v in os.environ.items() if k != "NSQD_TCP_ADDRESS"}
    result = subprocess.run([tool("nsq-tail"), "--topic", "closed", "--channel", "c",
                             "--nsqd-tcp-address", nsqd.tcp_address],
                            stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1), env=env,
                            timeout=30)
    assert result.returncode == 1, result.stderr
    assert result.stderr == b"nsq-tail: error: cannot write to stdout: it is closed\n"
    stats = nsqd.channel_stats("closed", "c")
    assert (stats["depth"], stats["in_flight_count"], stats["requeue_count"]) == (10, 0, 0)


def test_a_forwarded_library_exception_names_its_type_and_message():
    err = io.StringIO()
    console = Console("tool", err=err, out=io.BytesIO(), color=False)

    async def main(shutdown):
        forward_library_logs(console)
        try:
            raise OSError(9, "Bad file descriptor")
        except OSError:
            logging.getLogger("nsqcli.lib.reader").exception("uncaught exception in handler")
        try:
            raise KeyError()
        except KeyError:
            logging.getLogger("nsqcli.lib.reader").exception("empty")

    assert run_to_status(main, console) == ExitStatus.SUCCESS
    assert err.getvalue().splitlines() == [
        "tool: error: uncaught exception in handler: OSError: [Errno 9] Bad file descriptor",
        "tool: error: empty: KeyError",
    ]
