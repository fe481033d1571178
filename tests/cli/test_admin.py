"""``nsqcli topic|channel create|delete|empty|pause|unpause|list`` against nsqd and nsqlookupd
(both broker modes): the state each action leaves, checked through nsqd's /stats and
nsqlookupd's answers, one line per daemon, failures named, exit statuses."""

from __future__ import annotations

import pytest

import nsqcli.__main__ as umbrella
from nsqcli.admin import confirm


@pytest.fixture
def admin(invoke):
    """``admin("topic", "pause", "events", ...)`` runs ``nsqcli topic pause events ...``."""
    def run(*args, input=None, env=None):
        return invoke(umbrella.cli, list(args), input=input, env=env)

    return run


@pytest.fixture
def cluster(nsqd_factory, nsqlookupd):
    """Two nsqds registered with one nsqlookupd, both with topic events; the first also with
    channel audit (known to lookupd)."""
    nsqds = [nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address]) for _ in range(2)]
    for nsqd in nsqds:
        nsqd.create_topic("events")
        nsqlookupd.wait_for_producer(nsqd, topic="events")
    nsqds[0].create_channel("events", "audit")
    _wait(lambda: "audit" in nsqlookupd.channels("events"))
    return nsqds, nsqlookupd


def _wait(predicate, timeout=10.0):
    from polling import wait_for

    assert wait_for(predicate, timeout), "condition not reached"


def lines(text):
    return sorted(text.splitlines())


def lookupd_args(lookupd):
    return ["--lookupd-http-address", lookupd.http_address]


# ---- create --------------------------------------------------------------------------------


def test_create_topic_on_given_nsqds_in_go_syntax(admin, nsqd_factory):
    first, second = nsqd_factory(), nsqd_factory()
    result = admin("topic", "create", "orders", f"-nsqd-http-address={first.http_address}",
                   "-nsqd-http-address", second.http_address)
    assert result.exit_code == 0, result
    assert lines(result.stdout) == sorted(f"nsqd {n.http_address}: created topic orders"
                                          for n in (first, second))
    assert result.stderr == ""
    assert first.topic_stats("orders") is not None and second.topic_stats("orders") is not None


def test_create_topic_with_lookupd_registers_it_there(admin, cluster):
    (first, second), lookupd = cluster
    result = admin("topic", "create", "fresh", *lookupd_args(lookupd))
    assert result.exit_code == 0, result
    assert result.stdout == f"nsqlookupd {lookupd.http_address}: registered topic fresh\n"
    assert result.stderr.startswith("nsqcli topic: topic fresh: registered in nsqlookupd only")
    assert "fresh" in lookupd.topics() and lookupd.lookup("fresh")["producers"] == []
    assert first.topic_stats("fresh") is None and second.topic_stats("fresh") is None
    everywhere = admin("topic", "create", "wide", "--all-nodes", *lookupd_args(lookupd))
    assert everywhere.exit_code == 0, everywhere
    assert first.topic_stats("wide") is not None and second.topic_stats("wide") is not None
    assert len(everywhere.stdout.splitlines()) == 3


def test_create_channel_creates_its_topic_on_a_given_nsqd(admin, nsqd):
    result = admin("channel", "create", "--topic", "new", "c1", "c2",
                   "--nsqd-http-address", nsqd.http_address)
    assert result.exit_code == 0, result
    assert result.stdout.splitlines() == [
        f"nsqd {nsqd.http_address}: created channel c1 of topic new",
        f"nsqd {nsqd.http_address}: created channel c2 of topic new"]
    assert [c["channel_name"] for c in nsqd.topic_stats("new")["channels"]] == ["c1", "c2"]


def test_create_channel_through_lookupd_on_the_topics_producers(admin, cluster):
    (first, second), lookupd = cluster
    result = admin("channel", "create", "-topic=events", "billing", *lookupd_args(lookupd))
    assert result.exit_code == 0, result
    assert len(result.stdout.splitlines()) == 3  # two nsqds, one lookupd
    assert first.channel_stats("events", "billing") and second.channel_stats("events", "billing")
    assert "billing" in lookupd.channels("events")


# ---- pause, unpause, empty -----------------------------------------------------------------


def test_pause_and_unpause_a_topic_on_every_nsqd_lookupd_lists(admin, cluster):
    nsqds, lookupd = cluster
    result = admin("topic", "pause", "events", *lookupd_args(lookupd))
    assert result.exit_code == 0, result
    assert lines(result.stdout) == sorted(f"nsqd {n.http_address}: paused topic events"
                                          for n in nsqds)
    assert all(n.topic_stats("events")["paused"] for n in nsqds)
    result = admin("topic", "unpause", "events", *lookupd_args(lookupd))
    assert result.exit_code == 0, result
    assert not any(n.topic_stats("events")["paused"] for n in nsqds)


def test_pausing_a_channel_reports_the_nsqd_without_it(admin, cluster):
    (first, second), lookupd = cluster
    result = admin("channel", "pause", "--topic", "events", "audit", *lookupd_args(lookupd))
    assert result.exit_code == 0, result
    assert lines(result.stdout) == sorted([
        f"nsqd {first.http_address}: paused channel audit of topic events",
        f"nsqd {second.http_address}: has no channel audit of topic events"])
    assert first.channel_stats("events", "audit")["paused"] is True
    assert second.channel_stats("events", "audit") is None  # not created by the pause
    admin("channel", "unpause", "--topic", "events", "audit", *lookupd_args(lookupd))
    assert first.channel_stats("events", "audit")["paused"] is False


def test_empty_a_paused_topic_and_a_channel(admin, nsqd):
    nsqd.create_topic("full")
    nsqd.create_channel("full", "c")
    nsqd.mpub("full", [b"1", b"2"])
    _wait(lambda: nsqd.channel_stats("full", "c")["depth"] == 2)
    nsqd.http_json("POST", "/topic/pause", {"topic": "full"})
    nsqd.mpub("full", [b"3", b"4", b"5"])
    address = ["--nsqd-http-address", nsqd.http_address]
    result = admin("topic", "empty", "full", "--yes", *address)
    assert result.exit_code == 0, result
    assert result.stdout == f"nsqd {nsqd.http_address}: emptied topic full\n"
    assert nsqd.topic_stats("full")["depth"] == 0
    assert nsqd.channel_stats("full", "c")["depth"] == 2  # a channel keeps its own
    result = admin("channel", "empty", "--topic", "full", "c", "-y", *address)
    assert result.exit_code == 0, result
    assert nsqd.channel_stats("full", "c")["depth"] == 0


# ---- delete --------------------------------------------------------------------------------


def test_delete_a_topic_from_every_nsqd_and_from_lookupd(admin, cluster):
    nsqds, lookupd = cluster
    result = admin("topic", "delete", "events", "--yes", *lookupd_args(lookupd))
    assert result.exit_code == 0, result
    assert lines(result.stdout) == sorted(
        [f"nsqd {n.http_address}: deleted topic events" for n in nsqds]
        + [f"nsqlookupd {lookupd.http_address}: removed topic events"])
    assert all(n.topic_stats("events") is None for n in nsqds)
    assert "events" not in lookupd.topics() and lookupd.channels("events") == []
    assert lookupd.http("GET", "/lookup", {"topic": "events"})[0] == 404


def test_delete_a_channel_from_nsqd_and_lookupd(admin, cluster):
    (first, second), lookupd = cluster
    result = admin("channel", "delete", "--topic", "events", "audit", "-y", *lookupd_args(lookupd))
    assert result.exit_code == 0, result
    assert lines(result.stdout) == sorted([
        f"nsqd {first.http_address}: deleted channel audit of topic events",
        f"nsqd {second.http_address}: has no channel audit of topic events",
        f"nsqlookupd {lookupd.http_address}: removed channel audit of topic events"])
    assert first.channel_stats("events", "audit") is None
    assert lookupd.channels("events") == []


def test_a_failing_nsqd_is_named_and_keeps_the_lookupd_registration(admin, cluster, nsqd_factory):
    nsqds, lookupd = cluster
    stopped = nsqd_factory()
    stopped.stop()
    result = admin("topic", "delete", "events", "--yes", *lookupd_args(lookupd),
                   "--nsqd-http-address", stopped.http_address)
    assert result.exit_code == 1, result
    assert all(n.topic_stats("events") is None for n in nsqds)  # the others did it
    assert f"nsqd {stopped.http_address}: delete topic events failed: connection refused" \
        in result.stderr
    assert "kept topic events registered" in result.stderr
    assert "events" in lookupd.topics()
    assert len(result.stdout.splitlines()) == 2


def test_one_failing_nsqd_of_a_pause_exits_1(admin, nsqd_factory):
    live, stopped = nsqd_factory(), nsqd_factory()
    live.create_topic("events")
    stopped.stop()
    result = admin("topic", "pause", "events", "--nsqd-http-address", live.http_address,
                   "--nsqd-http-address", stopped.http_address)
    assert result.exit_code == 1, result
    assert result.stdout == f"nsqd {live.http_address}: paused topic events\n"
    (error,) = result.stderr.splitlines()
    assert error == (f"nsqcli topic: error: nsqd {stopped.http_address}: pause topic events "
                     "failed: connection refused (is nsqd running there?)")
    assert live.topic_stats("events")["paused"] is True


def test_a_topic_no_nsqd_has_is_a_failure(admin, nsqd):
    result = admin("topic", "pause", "nosuch", "--nsqd-http-address", nsqd.http_address)
    assert result.exit_code == 1, result
    assert result.stdout == f"nsqd {nsqd.http_address}: has no topic nosuch\n"
    assert result.stderr == "nsqcli topic: error: topic nosuch: no nsqd has it (asked 1 nsqd)\n"
    assert nsqd.topic_stats("nosuch") is None  # asking did not create it


def test_a_failing_lookupd_is_named(admin, nsqd, nsqlookupd_factory):
    lookupd = nsqlookupd_factory()
    lookupd.stop()
    nsqd.create_topic("events")
    result = admin("topic", "pause", "events", "--nsqd-http-address", nsqd.http_address,
                   *lookupd_args(lookupd))
    assert result.exit_code == 1, result
    assert result.stdout == f"nsqd {nsqd.http_address}: paused topic events\n"
    assert f"nsqlookupd {lookupd.http_address}: /lookup failed: connection refused " \
           "(is nsqlookupd running there?)" in result.stderr


# ---- confirmation --------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["delete", "empty"])
def test_without_a_terminal_and_without_yes_nothing_is_done(admin, nsqd, action):
    nsqd.pub("kept", b"m")
    result = admin("topic", action, "kept", "--nsqd-http-address", nsqd.http_address)
    assert result.exit_code == 2, result
    assert "stdin is not one: add --yes (-y)" in result.stderr
    assert result.stdout == ""
    assert nsqd.topic_stats("kept")["depth"] == 1


@pytest.fixture
def terminal(monkeypatch):
    monkeypatch.setattr(confirm, "stdin_is_terminal", lambda: True)


def test_confirmed_on_a_terminal(admin, nsqd, terminal):
    nsqd.create_topic("doomed")
    result = admin("topic", "delete", "doomed", "--nsqd-http-address", nsqd.http_address,
                   input="y\n")
    assert result.exit_code == 0, result
    assert result.stderr == (f"delete topic doomed on nsqd {nsqd.http_address}\nThe messages "
                             "queued there are lost once deleted. Proceed? [y/N] ")
    assert result.stdout == f"nsqd {nsqd.http_address}: deleted topic doomed\n"
    assert nsqd.topic_stats("doomed") is None


@pytest.mark.parametrize("answer", ["n\n", "\n", "whatever\n", ""])
def test_not_confirmed_on_a_terminal(admin, nsqd, terminal, answer):
    nsqd.create_topic("spared")
    nsqd.create_channel("spared", "c")
    result = admin("channel", "empty", "--topic", "spared", "c",
                   "--nsqd-http-address", nsqd.http_address, input=answer)
    assert result.exit_code == 1, result
    assert result.stderr.endswith("Proceed? [y/N] " + ("" if answer else "\n")
                                  + "nsqcli channel: error: not confirmed: nothing was emptied\n")
    assert result.stdout == ""
    assert nsqd.channel_stats("spared", "c") is not None


def test_nothing_to_delete_asks_nothing(admin, nsqd, terminal):
    result = admin("topic", "delete", "ghost", "--nsqd-http-address", nsqd.http_address)
    assert result.exit_code == 1, result
    assert "Proceed" not in result.stderr  # nsqd answered that it has no such topic


def test_dry_run_changes_nothing_and_needs_no_confirmation(admin, cluster):
    nsqds, lookupd = cluster
    result = admin("topic", "delete", "events", "--dry-run", *lookupd_args(lookupd))
    assert result.exit_code == 0, result
    assert lines(result.stdout) == sorted(
        [f"nsqd {n.http_address}: would delete topic events (POST /topic/delete?topic=events)"
         for n in nsqds]
        + [f"nsqlookupd {lookupd.http_address}: would delete topic events "
           "(POST /topic/delete?topic=events)"])
    assert all(n.topic_stats("events") is not None for n in nsqds)
    assert "events" in lookupd.topics()


# ---- list ----------------------------------------------------------------------------------


def test_list_topics_of_nsqds_and_lookupd(admin, cluster, nsqd_factory):
    (first, second), lookupd = cluster
    alone = nsqd_factory()
    alone.create_topic("solo")
    lookupd.http_json("POST", "/topic/create", {"topic": "registered"})
    result = admin("topic", "list", *lookupd_args(lookupd), "--nsqd-http-address",
                   alone.http_address)
    assert result.exit_code == 0, result
    assert result.stdout == "events\nregistered\nsolo\n"
    only_nsqd = admin("topic", "list", "--nsqd-http-address", alone.http_address)
    assert only_nsqd.stdout == "solo\n"


def test_list_channels(admin, cluster):
    (first, second), lookupd = cluster
    second.create_channel("events", "other")
    via_nsqds = admin("channel", "list", "--topic", "events", "--nsqd-http-address",
                      f"{first.http_address},{second.http_address}")
    assert (via_nsqds.exit_code, via_nsqds.stdout) == (0, "audit\nother\n"), via_nsqds
    _wait(lambda: "other" in lookupd.channels("events"))
    via_lookupd = admin("channel", "list", "-topic", "events", *lookupd_args(lookupd))
    assert via_lookupd.stdout == "audit\nother\n"
    unknown = admin("channel", "list", "--topic", "unknown", "--nsqd-http-address",
                    first.http_address)
    assert (unknown.exit_code, unknown.stdout, unknown.stderr) == (0, "", "")


def test_a_failing_source_of_a_list_exits_1_after_listing_the_others(admin, nsqd_factory):
    live, stopped = nsqd_factory(), nsqd_factory()
    live.create_topic("here")
    stopped.stop()
    result = admin("topic", "list", "--nsqd-http-address", live.http_address,
                   "--nsqd-http-address", stopped.http_address)
    assert result.exit_code == 1, result
    assert result.stdout == "here\n"
    assert result.stderr == (f"nsqcli topic: error: nsqd {stopped.http_address}: /stats failed: "
                             "connection refused (is nsqd running there?)\n")


def test_the_nsqd_address_may_come_from_the_environment(admin, nsqd):
    nsqd.create_topic("from-env")
    result = admin("topic", "list", env={"NSQD_HTTP_ADDRESS": nsqd.http_address})
    assert (result.exit_code, result.stdout) == (0, "from-env\n"), result


# ---- usage ---------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["topic", "pause", "bad name"], "Invalid value for 'TOPIC': invalid topic name 'bad name'"),
    (["channel", "pause", "--topic", "t", "c!"], "Invalid value for 'CHANNEL'"),
    (["channel", "pause", "--topic", "t!", "c"], "Invalid value for '--topic'"),
    (["channel", "list", "--topic", "t!"], "Invalid value for '--topic'"),
    (["channel", "pause", "c"], "Missing option '--topic'"),
    (["topic", "pause"], "Missing argument 'TOPIC...'"),
    (["topic", "pause", "t", "--yes"], "No such option '--yes'"),
    (["topic", "pause", "t", "--all-nodes"], "No such option '--all-nodes'"),
    (["topic", "pause", "t", "--http-client-request-timeout", "0"], "must be positive"),
    (["topic", "pause", "t", "--nsqd-http-address", "nohost"], "invalid nsqd HTTP address"),
    (["topic", "pause", "t", "-q", "-v"], "contradict"),
])
def test_usage_errors_exit_2_before_anything_is_sent(admin, args, message):
    result = admin(*args, "--lookupd-http-address", "127.0.0.1:1")  # nothing listens there
    assert result.exit_code == 2, result
    assert message in result.stderr
    assert "refused" not in result.stderr


@pytest.mark.parametrize("args", [["topic"], ["channel"], ["topic", "delete"], ["channel", "list"],
                                  ["topic", "create"]])
def test_help_lists_the_statuses_they_return(admin, args):
    from nsqcli.cli.exit_codes import statuses_listed

    result = admin(*args, "--help")
    assert result.exit_code == 0, result
    assert [int(s) for s in statuses_listed(" ".join(result.stdout.split()))] == [0, 1, 2, 130]


def test_verbose_shows_each_request_and_its_answer(admin, nsqd):
    nsqd.create_topic("t")
    result = admin("topic", "pause", "t", "-v", "--nsqd-http-address", nsqd.http_address)
    assert result.exit_code == 0, result
    assert f"nsqcli topic: POST http://{nsqd.http_address}/topic/pause?topic=t: HTTP 200\n" \
        in result.stderr
    quiet = admin("topic", "pause", "t", "--nsqd-http-address", nsqd.http_address)
    assert quiet.stderr == ""
