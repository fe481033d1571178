"""Each tool's exit status agrees with the table and with what it prints; each tool's help
lists only the statuses it can return (issue 13, items 5 and 9)."""

from __future__ import annotations

import pytest

from archive_samples import run_tool
from nsqcli.__main__ import cli
from nsqcli.dev_server import dev_server
from nsqcli.cli.exit_codes import ExitStatus, describe, publish_error_status, statuses_listed
from nsqcli.pub.command import command as pub
from nsqcli.replay.command import command as replay
from nsqcli.tail.command import command as tail
from nsqcli.to_file.command import to_file


def test_nsq_pub_oversized_record_with_failed_file_exits_3(invoke, nsqd_factory, tmp_path):
    nsqd = nsqd_factory(max_msg_size=100)
    failed = tmp_path / "failed.txt"
    result = invoke(pub, ["--topic", "t", "--nsqd-tcp-address", nsqd.tcp_address,
                          "--failed-file", failed], input=b"x" * 150 + b"\n")
    assert result.exit_code == 3, result
    assert f"1 of 1 records were not acknowledged by nsqd; they are in {failed}" in result.stderr
    assert failed.read_bytes() == b"x" * 150 + b"\n"


def test_nsq_replay_oversized_record_exits_3(nsqd_factory, tmp_path):
    nsqd = nsqd_factory(max_msg_size=100)
    src = tmp_path / "in.log"
    src.write_bytes(b"ok\n" + b"x" * 150 + b"\n")
    rc, _, err = run_tool("replay", str(src), "--topic", "t", "--nsqd-tcp-address",
                          nsqd.tcp_address)
    assert rc == 3, err
    assert "record 2 is 150 bytes" in err and "1 of 2 records were not acknowledged" in err


def test_what_stopped_a_publisher_has_one_status_for_nsq_pub_and_nsq_replay():
    from nsqcli.lib import publisher

    refused = publisher.NsqdRefusedError("127.0.0.1:4150", ValueError("E_BAD_TOPIC"), "t")
    cases = [
        (publisher.RecordTooLargeError(2, 150, 100), ExitStatus.NOT_ACKNOWLEDGED,
         "record 2 is 150 bytes, larger than nsqd's max-msg-size 100 (use --skip-oversized to "
         "skip such records)"),
        (publisher.RetryTimeoutError("gone for 1s"), ExitStatus.NOT_ACKNOWLEDGED, "gone for 1s"),
        (refused, ExitStatus.ERROR, refused.message),
    ]
    for error, status, line in cases:
        assert publish_error_status(error) == (status, line)
        assert describe(error) == (status, line)  # the runner's table agrees


@pytest.mark.parametrize("command, statuses", [
    (pub, ["0", "1", "2", "3", "130"]),
    (replay, ["0", "1", "2", "3", "130"]),
    (tail, ["0", "1", "2", "130"]),
    (to_file, ["0", "1", "2", "130"]),
    (dev_server, ["1", "2", "130"]),
    (cli, ["0", "1", "2", "3", "130"]),
])
def test_help_lists_only_the_statuses_the_tool_can_return(invoke, command, statuses):
    result = invoke(command, ["--help"])
    assert result.exit_code == 0, result
    shown = " ".join(result.stdout.split())  # click wraps the epilog
    assert [str(int(s)) for s in statuses_listed(shown)] == statuses, result.stdout
