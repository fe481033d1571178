"""nsq-stat against an nsqd (embedded or real): plain rows, JSON, narrowing, sums over nsqds,
down nsqds, lookupd discovery, Go's flag syntax and the exit statuses."""

from __future__ import annotations

import json
import socket

import pytest

import nsqcli.__main__ as umbrella
from nsqcli.stat.command import command as stat_command
from polling import wait_for

FAST = ["--count", "2", "--interval", "0.2"]


def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def queue(nsqd, topic: str, channel: str, count: int) -> None:
    """``count`` messages waiting on ``topic``/``channel`` (nsqd moves them from the topic to
    its channels on its own time: wait for it)."""
    nsqd.create_topic(topic)
    nsqd.create_channel(topic, channel)
    nsqd.mpub(topic, [f"m{i}" for i in range(count)])
    assert wait_for(lambda: nsqd.channel_stats(topic, channel)["depth"] == count)


def plain_table(stdout: str) -> list[dict[str, str]]:
    header, *lines = stdout.splitlines()
    names = header.split()
    rows = [dict(zip(names, line.split())) for line in lines]
    assert all(len(row) == len(names) for row in rows), stdout
    return rows


def polls(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_count_prints_a_header_then_each_polls_rows(nsqd, invoke):
    queue(nsqd, "stat_plain", "audit", 5)
    result = invoke(stat_command, ["--nsqd-http-address", nsqd.http_address, *FAST])
    assert result.exit_code == 0, result
    assert result.stderr == ""
    rows = [row for row in plain_table(result.stdout) if row["topic"] == "stat_plain"]
    assert [row["channel"] for row in rows] == ["(topic)", "audit"] * 2
    first, second = rows[1], rows[3]
    assert (first["nsqd"], first["depth"], first["mem"], first["disk"], first["msgs"]) == \
        ("(all)", "5", "5", "0", "5")
    assert (first["inflt"], first["def"], first["req"], first["t-o"], first["clients"]) == \
        ("0", "0", "0", "0", "0")
    assert (first["in/s"], first["out/s"], first["change"], first["paused"]) == ("-", "-", "-", "no")
    assert (second["in/s"], second["out/s"], second["change"]) == ("0.0", "0.0", "0")
    assert rows[0]["inflt"] == "-" and rows[0]["msgs"] == "5"  # the topic's own row


def test_json_one_object_per_poll(nsqd, invoke):
    queue(nsqd, "stat_json", "audit", 3)
    result = invoke(stat_command, ["--nsqd-http-address", nsqd.http_address, "--json",
                                   "--topic", "stat_json", *FAST])
    assert result.exit_code == 0, result
    first, second = polls(result.stdout)
    assert (first["poll"], second["poll"]) == (1, 2)
    assert first["nsqds"] == [{"address": nsqd.http_address, "error": None}]
    assert first["lookupds"] == []
    topic, audit = second["rows"]
    assert (topic["topic"], topic["channel"], topic["messages"], topic["in_flight"]) == \
        ("stat_json", None, 3, None)
    assert (audit["channel"], audit["depth"], audit["memory_depth"], audit["backend_depth"]) == \
        ("audit", 3, 3, 0)
    assert (audit["messages"], audit["clients"], audit["paused"], audit["nsqds"]) == (3, 0, False, 1)
    assert (audit["rate_in"], audit["rate_out"], audit["depth_change"], audit["trend"]) == \
        (0.0, 0.0, 0, "steady")
    assert first["rows"][1]["rate_in"] is None and first["rows"][1]["trend"] is None


def test_topic_and_channel_narrow_the_view(nsqd, invoke):
    queue(nsqd, "stat_a", "audit", 1)
    queue(nsqd, "stat_b", "audit", 2)
    nsqd.create_channel("stat_b", "other")
    result = invoke(stat_command, ["--nsqd-http-address", nsqd.http_address, "--json",
                                   "--channel", "audit", "--count", "1"])
    assert result.exit_code == 0, result
    (poll,) = polls(result.stdout)
    # channel rows only, deepest first
    assert [(r["topic"], r["channel"]) for r in poll["rows"]] == [("stat_b", "audit"), ("stat_a", "audit")]
    result = invoke(stat_command, ["--nsqd-http-address", nsqd.http_address, "--json",
                                   "--topic", "stat_b", "--count", "1"])
    (poll,) = polls(result.stdout)
    assert [r["channel"] for r in poll["rows"]] == [None, "audit", "other"]


def test_a_topic_that_is_nowhere_gives_no_rows_and_exit_0(nsqd, invoke):
    result = invoke(stat_command, ["--nsqd-http-address", nsqd.http_address, "--json",
                                   "--topic", "stat_nowhere", "--count", "1"])
    assert result.exit_code == 0, result
    assert polls(result.stdout)[0]["rows"] == []


def test_a_paused_channel_is_marked(nsqd, invoke):
    queue(nsqd, "stat_paused", "held", 1)
    nsqd.http_json("POST", "/channel/pause", {"topic": "stat_paused", "channel": "held"})
    result = invoke(stat_command, ["--nsqd-http-address", nsqd.http_address, "--topic",
                                   "stat_paused", "--count", "1"])
    assert result.exit_code == 0, result
    paused = {row["channel"]: row["paused"] for row in plain_table(result.stdout)}
    assert paused == {"(topic)": "no", "held": "yes"}


def test_two_nsqds_are_summed_or_shown_each(nsqd_factory, invoke):
    first, second = nsqd_factory(), nsqd_factory()
    queue(first, "stat_sum", "c", 3)
    queue(second, "stat_sum", "c", 4)
    nsqd_http_address = ["--nsqd-http-address", f"{first.http_address},{second.http_address}"]
    result = invoke(stat_command, [*nsqd_http_address, "--json", "--channel", "c", "--count", "1"])
    assert result.exit_code == 0, result
    (row,) = polls(result.stdout)[0]["rows"]
    assert (row["nsqd"], row["depth"], row["messages"], row["nsqds"]) == (None, 7, 7, 2)
    result = invoke(stat_command, [*nsqd_http_address, "--json", "--channel", "c", "--count",
                                   "1", "--per-nsqd"])
    rows = polls(result.stdout)[0]["rows"]
    assert [(r["nsqd"], r["depth"]) for r in rows] == [(second.http_address, 4), (first.http_address, 3)]


def test_an_nsqd_that_does_not_answer_is_shown_down(nsqd, invoke):
    queue(nsqd, "stat_down", "c", 2)
    down = f"127.0.0.1:{free_port()}"
    result = invoke(stat_command, ["--nsqd-http-address", nsqd.http_address,
                                   "--nsqd-http-address", down, "--json", "--topic", "stat_down",
                                   *FAST])
    assert result.exit_code == 0, result
    for poll in polls(result.stdout):
        assert poll["nsqds"][0] == {"address": nsqd.http_address, "error": None}
        assert poll["nsqds"][1]["address"] == down
        assert "connection refused" in poll["nsqds"][1]["error"]
        assert poll["rows"][1]["depth"] == 2
    # said once on stderr, not at every poll
    assert result.stderr == (f"nsq-stat: warning: nsqd {down} is down: connection refused "
                             "(is nsqd running there?)\n")


def test_with_count_no_nsqd_answering_exits_1_with_one_line(invoke):
    down = f"127.0.0.1:{free_port()}"
    result = invoke(stat_command, ["--nsqd-http-address", down, *FAST])
    assert result.exit_code == 1, result
    last = result.stderr.splitlines()[-1]
    assert last == (f"nsq-stat: error: no nsqd answered in 2 polls: nsqd {down}: connection "
                    "refused (is nsqd running there?)")
    assert "Traceback" not in result.stderr


def test_nsqds_found_through_lookupd(nsqd_with_lookupd, invoke):
    nsqd, lookupd = nsqd_with_lookupd
    queue(nsqd, "stat_lookup", "c", 1)
    result = invoke(stat_command, ["--lookupd-http-address", lookupd.http_address, "--json",
                                   "--topic", "stat_lookup", "--count", "1"])
    assert result.exit_code == 0, result
    (poll,) = polls(result.stdout)
    assert poll["lookupds"] == [{"address": lookupd.http_address, "error": None}]
    assert poll["nsqds"] == [{"address": nsqd.http_address, "error": None}]
    assert [(r["channel"], r["depth"]) for r in poll["rows"]] == [(None, 0), ("c", 1)]


def test_a_lookupd_that_does_not_answer(nsqd_with_lookupd, invoke):
    nsqd, lookupd = nsqd_with_lookupd
    down = f"127.0.0.1:{free_port()}"
    result = invoke(stat_command, ["--lookupd-http-address", lookupd.http_address,
                                   "--lookupd-http-address", down, "--json", "--count", "1"])
    assert result.exit_code == 0, result  # the other lookupd listed the nsqd
    (poll,) = polls(result.stdout)
    assert poll["nsqds"] == [{"address": nsqd.http_address, "error": None}]
    assert "nsqlookupd" in poll["lookupds"][1]["error"]
    alone = invoke(stat_command, ["--lookupd-http-address", down, "--count", "1"])
    assert alone.exit_code == 1, alone
    assert alone.stderr.splitlines()[-1] == (
        f"nsq-stat: error: no nsqd answered in 1 poll: nsqlookupd {down}: connection refused "
        "(is nsqlookupd running there?)")


def test_gos_flag_syntax(nsqd, invoke):
    queue(nsqd, "stat_go", "audit", 1)
    result = invoke(stat_command, [
        "-topic=stat_go", "-channel", "audit", f"-nsqd-http-address={nsqd.http_address}",
        "-interval=200ms", "-count=2", "-http-client-connect-timeout=1s",
        "--http-client-request-timeout=2s", "-json=true", "-per-nsqd=false"])
    assert result.exit_code == 0, result
    assert [[(r["channel"], r["depth"]) for r in poll["rows"]] for poll in polls(result.stdout)] == \
        [[("audit", 1)]] * 2


@pytest.mark.parametrize("args, complaint", [
    (["--interval", "0"], "must be positive"),
    (["-interval=-1s"], "'-interval'"),
    (["--count", "0"], "--count"),
    (["--topic", "bad topic!"], "--topic"),
    (["--channel", "x" * 65], "--channel"),
    (["--nsqd-http-address", "nonsense"], "nsqd HTTP address"),
    (["--lookupd-http-address", "host:99999"], "lookupd HTTP address"),
    (["--http-client-request-timeout", "0s"], "must be positive"),
    (["-http-client-connect-timeout=soon"], "invalid duration"),
    (["-nsqd-tcp-address=127.0.0.1:4150"], "No such option"),
])
def test_bad_flags_exit_2_with_one_error(invoke, args, complaint):
    result = invoke(stat_command, args)
    assert result.exit_code == 2, result
    assert complaint in result.stderr and "Traceback" not in result.stderr


def test_help_lists_only_the_statuses_it_returns(invoke):
    result = invoke(stat_command, ["--help"])
    epilog = result.stdout[result.stdout.index("Exit status:"):]
    assert "0 success" in epilog and "Ctrl-C" in epilog and "2 usage" in epilog
    assert "130" not in epilog and "3 some" not in epilog


def test_the_umbrella_runs_it(nsqd, invoke):
    queue(nsqd, "stat_umbrella", "c", 1)
    result = invoke(umbrella.cli, ["stat", "--nsqd-http-address", nsqd.http_address, "--json",
                                   "--channel", "c", "--count", "1"])
    assert result.exit_code == 0, result
    assert [r["topic"] for r in polls(result.stdout)[0]["rows"]] == ["stat_umbrella"]


def test_an_nsqd_given_as_a_url_and_listed_by_lookupd_is_polled_once(nsqd_with_lookupd, invoke):
    nsqd, lookupd = nsqd_with_lookupd
    queue(nsqd, "stat_once", "c", 2)
    result = invoke(stat_command, ["--nsqd-http-address", f"http://{nsqd.http_address}/",
                                   "--lookupd-http-address", lookupd.http_address, "--json",
                                   "--channel", "c", "--count", "1"])
    assert result.exit_code == 0, result
    (poll,) = polls(result.stdout)
    assert poll["nsqds"] == [{"address": nsqd.http_address, "error": None}]
    assert [(r["depth"], r["nsqds"]) for r in poll["rows"]] == [(2, 1)]
