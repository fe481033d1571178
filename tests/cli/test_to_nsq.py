"""nsq-to-nsq end to end between nsqds (embedded or real): every message relayed exactly once,
the JSON filters, the destination's modes, limits and refusals, the counts it prints."""

from __future__ import annotations

import json
import signal

import pytest

from polling import wait_for
from relay_helpers import (
    SOURCE_CHANNEL, RelayProcess, collected, fill, final_counts, left_on_source, received,
    relay_args, source_settled, wait_relayed, watch,
)

N = 5000


def test_every_message_is_relayed_exactly_once(nsqd_factory, tmp_path):
    source, destination = nsqd_factory(), nsqd_factory()
    bodies = [b"order-%d" % i for i in range(N)]
    fill(source, "orders", bodies)
    watch(destination, "orders")
    with RelayProcess(tmp_path, "--topic", "orders", *relay_args(source, destination)) as relay:
        wait_relayed(source, destination, "orders", N, relay=relay)
        stderr = relay.stop()
    assert relay.returncode == 130, stderr
    assert final_counts(stderr) == {"relayed": N, "filtered": 0, "not_json": 0, "requeued": 0,
                                    "oversized": 0}
    assert received(destination, "orders") == N  # no copy sent twice
    assert sorted(collected(destination, "orders")) == sorted(bodies)
    stats = source.channel_stats("orders", SOURCE_CHANNEL)
    assert (stats["message_count"], stats["requeue_count"], stats["timeout_count"]) == (N, 0, 0)


def test_several_topics_into_one_destination_topic(nsqd_factory, tmp_path):
    source, destination = nsqd_factory(), nsqd_factory()
    first, second = [b"a-%d" % i for i in range(300)], [b"b-%d" % i for i in range(200)]
    fill(source, "alpha", first)
    fill(source, "beta", second)
    watch(destination, "merged")
    with RelayProcess(tmp_path, "--topic", "alpha", "--topic", "beta", "--destination-topic",
                      "merged", *relay_args(source, destination)) as relay:
        alpha, beta = source_settled(source, "alpha"), source_settled(source, "beta")
        assert wait_for(lambda: received(destination, "merged") == 500 and alpha() and beta(),
                        timeout=60), relay.stderr
        stderr = relay.stop()
    assert final_counts(stderr)["relayed"] == 500
    assert sorted(collected(destination, "merged")) == sorted(first + second)


def test_round_robin_spreads_and_fan_out_copies(nsqd_factory, tmp_path):
    source = nsqd_factory()
    spread, copies = [nsqd_factory(), nsqd_factory()], [nsqd_factory(), nsqd_factory()]
    bodies = [b"rr-%d" % i for i in range(N)]
    fill(source, "rr", bodies)
    fill(source, "fo", [b"fo-%d" % i for i in range(N)])
    for nsqd in spread:
        watch(nsqd, "rr")
    for nsqd in copies:
        watch(nsqd, "fo")
    with RelayProcess(tmp_path, "--topic", "rr", *relay_args(source, spread),
                      "--max-in-flight", 1000) as rr, \
            RelayProcess(tmp_path, "--topic", "fo", "--mode", "fan-out",
                         *relay_args(source, copies)) as fo:
        spread_done, copies_done = source_settled(source, "rr"), source_settled(source, "fo")
        assert wait_for(lambda: spread_done() and copies_done(), timeout=90), \
            (rr.stderr, fo.stderr)
        rr.stop()
        fo.stop()
    # round-robin: each message to one of them, exactly once in all; both got batches
    assert sorted(collected(spread[0], "rr") + collected(spread[1], "rr")) == sorted(bodies)
    assert all(received(nsqd, "rr") > 0 for nsqd in spread)
    # fan-out: every message to each, FINed once both acknowledged it
    for nsqd in copies:
        assert sorted(collected(nsqd, "fo")) == sorted(b"fo-%d" % i for i in range(N))


def test_gos_hostpool_modes_are_accepted(nsqd_factory, tmp_path):
    source, destination = nsqd_factory(), nsqd_factory()
    fill(source, "hp", [b"hp-%d" % i for i in range(100)])
    watch(destination, "hp")
    with RelayProcess(tmp_path, "-topic=hp", "-mode=epsilon-greedy",
                      *relay_args(source, destination)) as relay:
        wait_relayed(source, destination, "hp", 100, relay=relay)
        assert final_counts(relay.stop())["relayed"] == 100


def test_destination_nsqds_from_nsqlookupd(nsqd_factory, nsqlookupd, tmp_path):
    source = nsqd_factory()
    destination = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    watch(destination, "found")  # registers the nsqd (and the topic) with nsqlookupd
    assert wait_for(lambda: nsqlookupd.nodes(), timeout=30)
    fill(source, "found", [b"f-%d" % i for i in range(500)])
    with RelayProcess(tmp_path, "--topic", "found", "--nsqd-tcp-address", source.tcp_address,
                      "--destination-lookupd-http-address", nsqlookupd.http_address) as relay:
        wait_relayed(source, destination, "found", 500, relay=relay)
        relay.stop()
    assert sorted(collected(destination, "found")) == sorted(b"f-%d" % i for i in range(500))


# ---- the JSON filters -------------------------------------------------------------------------

DOCUMENTS = [
    (b'{"kind":"click","n":1,"extra":true}', True),
    (b'{"kind":"view","n":1}', False),            # another value
    (b'{"n":2}', False),                          # no "kind"
    (b'{"kind":7}', False),                       # not the string, and "click" is no number
    (b'["kind","click"]', "not json"),            # JSON, not an object
    (b'plain text', "not json"),
    (b'{"kind":"click","n":2.0,"nested":{"b":1,"a":2}}', True),
]


def test_json_filters_and_whitelist(nsqd_factory, tmp_path):
    source, destination = nsqd_factory(), nsqd_factory()
    fill(source, "events", [body for body, _ in DOCUMENTS])
    watch(destination, "clicks")
    with RelayProcess(tmp_path, "--topic", "events", "--destination-topic", "clicks",
                      "--require-json-field", "kind", "--require-json-value", "click",
                      "--whitelist-json-field", "n", "--whitelist-json-field", "kind",
                      *relay_args(source, destination)) as relay:
        settled = source_settled(source, "events")
        assert wait_for(lambda: received(destination, "clicks") == 2 and settled(),
                        timeout=60), relay.stderr
        stderr = relay.stop()
    counts = final_counts(stderr)
    assert (counts["relayed"], counts["filtered"], counts["not_json"]) == (2, 5, 2)
    # only the whitelisted keys, sorted, compact; 2.0 written as 2, as Go writes it
    assert sorted(collected(destination, "clicks")) == [b'{"kind":"click","n":1}',
                                                        b'{"kind":"click","n":2}']


def test_numeric_required_value(nsqd_factory, tmp_path):
    source, destination = nsqd_factory(), nsqd_factory()
    documents = [b'{"code":404}', b'{"code":404.0}', b'{"code":"404"}', b'{"code":4040}',
                 b'{"code":true}']
    fill(source, "codes", documents)
    watch(destination, "codes")
    with RelayProcess(tmp_path, "--topic", "codes", "--require-json-field", "code",
                      "--require-json-value", "4.04e2", *relay_args(source, destination)) as relay:
        assert wait_for(source_settled(source, "codes"), timeout=60), relay.stderr
        relay.stop()
    # a JSON number equal as a float; a string only when it is the very text given
    assert sorted(collected(destination, "codes")) == [b'{"code":404.0}', b'{"code":404}']


# ---- what the destination refuses, and who stops it ---------------------------------------------

def test_messages_the_destination_refuses_are_requeued_never_finished(nsqd_factory, tmp_path):
    source, destination = nsqd_factory(), nsqd_factory(max_msg_size=200)
    small = [b"s-%d" % i for i in range(1000)]
    large = [b"L-%d-" % i + b"x" * 500 for i in range(5)]
    fill(source, "mixed", small[:500] + large + small[500:])
    watch(destination, "mixed")
    with RelayProcess(tmp_path, "--topic", "mixed", *relay_args(source, destination)) as relay:
        assert wait_for(lambda: received(destination, "mixed") == 1000 and (
            source.channel_stats("mixed", SOURCE_CHANNEL)["requeue_count"] >= 5), timeout=60), \
            relay.stderr
        stderr = relay.stop()
    assert relay.returncode == 130
    counts = final_counts(stderr)
    assert counts["relayed"] == 1000 and counts["oversized"] >= 5
    assert b"larger than destination mixed accepts: requeued" in stderr
    assert sorted(collected(destination, "mixed")) == sorted(small)
    assert sorted(left_on_source(source, "mixed")) == sorted(large)  # never FINed


def test_a_destination_that_is_not_nsqd_stops_the_relay(nsqd, http_server, tmp_path):
    fill(nsqd, "t", [b"one", b"two"])
    with RelayProcess(tmp_path, "--topic", "t", "--nsqd-tcp-address", nsqd.tcp_address,
                      "--destination-nsqd-tcp-address", http_server) as relay:
        assert relay.wait(60) == 1
    lines = relay.stderr.decode().strip().splitlines()
    assert "error: destination: " in lines[-1] and http_server in lines[-1], lines
    assert "the peer is not an nsqd: it answered HTTP" in lines[-1], lines
    assert "relayed 0, filtered out 0, requeued 2" in lines[-2], lines
    assert sorted(left_on_source(nsqd, "t")) == [b"one", b"two"]


@pytest.mark.parametrize("args, message", [
    (["--topic", "t"], "give --destination-nsqd-tcp-address or --destination-lookupd-http-address"),
    (["--topic", "t", "--destination-nsqd-tcp-address", "127.0.0.1:4150"],
     "topic t would be relayed into itself on 127.0.0.1:4150"),
    (["--topic", "t", "--require-json-value", "x", "--destination-nsqd-tcp-address", "h:1"],
     "--require-json-value needs --require-json-field"),
    (["--topic", "bad topic", "--destination-nsqd-tcp-address", "h:1"], "'--topic'"),
    (["--topic", "t", "--destination-topic", "x" * 70, "--destination-nsqd-tcp-address", "h:1"],
     "'--destination-topic'"),
    (["--topic", "t", "--destination-nsqd-tcp-address", "h:1", "--destination-snappy",
      "--destination-deflate"], "--destination-snappy and --destination-deflate are mutually"),
    (["--topic", "t", "--destination-nsqd-tcp-address", "h:1", "--producer-opt", "nope=1"],
     "unknown producer option 'nope'"),
])
def test_usage_errors_exit_2_before_anything_is_sent(invoke, args, message):
    from nsqcli.to_nsq.command import command

    result = invoke(command, args)
    assert result.exit_code == 2, result
    assert message in result.stderr, result
    assert "Traceback" not in result.stderr


def test_progress_and_status_lines(nsqd_factory, tmp_path):
    source, destination = nsqd_factory(), nsqd_factory()
    fill(source, "p", [b"p-%d" % i for i in range(1000)])
    with RelayProcess(tmp_path, "--topic", "p", "--progress", "--status-every", "400",
                      *relay_args(source, destination)) as relay:
        wait_relayed(source, destination, "p", 1000, relay=relay)
        assert wait_for(lambda: b" relayed (" in relay.stderr)  # every 0.5 s
        stderr = relay.stop(signal.SIGINT)
    assert relay.returncode == 130
    lines = stderr.decode().splitlines()
    # --status-every 400: a line once 400 were relayed, and once 800 were (acknowledged in
    # batches, so a line may count a few more)
    status = [int(line.split()[2].rstrip(",")) for line in lines[:-1]
              if line.startswith("nsq-to-nsq: relayed ")]
    assert len(status) == 2 and 400 <= status[0] < 800 <= status[1] <= 1000, lines
    assert any(line.startswith("1,000 relayed (") for line in lines), lines  # --progress
    assert lines[-1] == "nsq-to-nsq: relayed 1000, filtered out 0, requeued 0"


def test_documents_round_trip_as_json(nsqd_factory, tmp_path):
    """Whitelisting keeps each value as JSON had it (strings, numbers, nested objects)."""
    source, destination = nsqd_factory(), nsqd_factory()
    document = {"id": "é✓", "big": 12345678901234567, "list": [1, {"b": None}], "drop": 1}
    fill(source, "docs", [json.dumps(document).encode()])
    watch(destination, "docs")
    with RelayProcess(tmp_path, "--topic", "docs", "--whitelist-json-field", "id",
                      "--whitelist-json-field", "big", "--whitelist-json-field", "list",
                      *relay_args(source, destination)) as relay:
        wait_relayed(source, destination, "docs", 1, relay=relay)
        relay.stop()
    [copy] = collected(destination, "docs")
    assert json.loads(copy) == {"id": "é✓", "big": 12345678901234567, "list": [1, {"b": None}]}
