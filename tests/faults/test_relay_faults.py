"""nsq-to-nsq loses nothing however it is stopped and whichever side fails: every message
published to the source is, afterwards, still on the source or at the destination (a message
FINed on the source is one the destination acknowledged). Copies may arrive twice."""

from __future__ import annotations

import signal
import time

from fault_helpers import ChaosProxy, wait_for
from relay_helpers import (
    SOURCE_CHANNEL, RelayProcess, collected, fill, final_counts, left_on_source, received,
    relay_args, source_settled, watch,
)

FAST_BACKOFF = ("--consumer-opt", "max_backoff_duration=2s", "--consumer-opt",
                "backoff_multiplier=0.5s")


def _nothing_lost(source, destination, topic, bodies):
    """Every body is still queued on the source or arrived at the destination; returns both."""
    left = left_on_source(source, topic)
    arrived = collected(destination, topic)
    assert set(bodies) <= set(left) | set(arrived), len(set(bodies) - set(left) - set(arrived))
    return left, arrived


def test_sigterm_mid_stream_drains_and_loses_nothing(nsqd_factory, tmp_path):
    source, destination = nsqd_factory(), nsqd_factory()
    bodies = [b"st-%d" % i for i in range(40_000)]
    fill(source, "st", bodies)
    watch(destination, "st")
    with RelayProcess(tmp_path, "--topic", "st", "--max-in-flight", 2000,
                      *relay_args(source, destination)) as relay:
        assert wait_for(lambda: received(destination, "st") >= 5000, timeout=60), relay.stderr
        stderr = relay.stop(signal.SIGTERM)
    assert relay.returncode == 130, stderr
    assert received(destination, "st") < len(bodies), "stopped too late to test a drain"
    left, arrived = _nothing_lost(source, destination, "st", bodies)
    counts = final_counts(stderr)
    # the drain published what it held and FINed exactly what the destination acknowledged
    assert counts["relayed"] == len(arrived) == len(bodies) - len(left), counts
    assert counts["requeued"] == 0 and len(set(arrived)) == len(arrived)


def test_sigkill_mid_stream_loses_nothing(nsqd_factory, tmp_path):
    source = nsqd_factory(msg_timeout_ms=2000)  # what the killed relay held comes back soon
    destination = nsqd_factory()
    bodies = [b"sk-%d" % i for i in range(40_000)]
    fill(source, "sk", bodies)
    watch(destination, "sk")
    with RelayProcess(tmp_path, "--topic", "sk", "--max-in-flight", 2000,
                      *relay_args(source, destination)) as relay:
        assert wait_for(lambda: received(destination, "sk") >= 5000, timeout=60), relay.stderr
        relay.stop(signal.SIGKILL)
    assert received(destination, "sk") < len(bodies), "killed too late"
    _nothing_lost(source, destination, "sk", bodies)


def test_sigkill_while_the_destination_hangs_loses_nothing(nsqd_factory, tmp_path):
    """The destination stops answering: what the relay takes meanwhile must stay in flight on
    the source (a relay that FINs before the destination's OK would lose it when killed), and
    be TOUCHed so that nsqd's msg_timeout does not deliver it to someone else meanwhile."""
    source = nsqd_factory(msg_timeout_ms=2000)
    destination = nsqd_factory()
    bodies = [b"sh-%d" % i for i in range(20_000)]
    fill(source, "sh", bodies)
    watch(destination, "sh")
    stats = lambda: source.channel_stats("sh", SOURCE_CHANNEL)  # noqa: E731
    with ChaosProxy(destination.tcp_address) as proxy, \
            RelayProcess(tmp_path, "--topic", "sh", "--max-in-flight", 500,
                         "--nsqd-tcp-address", source.tcp_address,
                         "--destination-nsqd-tcp-address", proxy.address) as relay:
        assert wait_for(lambda: received(destination, "sh") >= 2000, timeout=60), relay.stderr
        proxy.stall()
        # it takes what it may and holds it, unanswered, for as long as the destination hangs
        assert wait_for(lambda: stats()["in_flight_count"] == 500, timeout=30), stats()
        timeouts = stats()["timeout_count"]
        time.sleep(3 * 2.0 + 5)  # 3 msg_timeouts, and the 5 s nsqd's queue scan may add
        assert (stats()["in_flight_count"], stats()["timeout_count"]) == (500, timeouts), stats()
        relay.stop(signal.SIGKILL)
    _nothing_lost(source, destination, "sh", bodies)


def test_destination_down_then_up(nsqd_factory, tmp_path):
    source, destination = nsqd_factory(), nsqd_factory()
    bodies = [b"du-%d" % i for i in range(3000)]
    fill(source, "du", bodies)
    watch(destination, "du")
    destination.stop()
    requeued = lambda: source.channel_stats("du", SOURCE_CHANNEL)["requeue_count"]  # noqa: E731
    with RelayProcess(tmp_path, "--topic", "du", "--retry-timeout", "1s", *FAST_BACKOFF,
                      *relay_args(source, destination)) as relay:
        assert wait_for(lambda: b"requeued on the source until it is back" in relay.stderr,
                        timeout=30), relay.stderr
        # REQ with backoff: the Reader takes one message per backoff window, it does not spin
        assert wait_for(lambda: requeued() > 0)
        first = requeued()
        time.sleep(3)
        assert requeued() - first <= 20, (first, requeued())
        destination.start()
        assert wait_for(source_settled(source, "du"), timeout=90), relay.stderr
        stderr = relay.stop()
    assert relay.returncode == 130
    assert b"destination du: publishing again" in stderr
    assert sorted(collected(destination, "du")) == sorted(bodies)  # each once, none lost
    assert final_counts(stderr)["relayed"] == len(bodies)


def test_destination_lost_mid_stream_then_back(nsqd_factory, tmp_path):
    source, destination = nsqd_factory(), nsqd_factory()
    bodies = [b"dl-%d" % i for i in range(30_000)]
    fill(source, "dl", bodies)
    watch(destination, "dl")
    requeued = lambda: source.channel_stats("dl", SOURCE_CHANNEL)["requeue_count"]  # noqa: E731
    with RelayProcess(tmp_path, "--topic", "dl", "--retry-timeout", "1s", *FAST_BACKOFF,
                      *relay_args(source, destination)) as relay:
        assert wait_for(lambda: received(destination, "dl") >= 3000, timeout=60), relay.stderr
        destination.stop()
        # what was held when it went is given up after --retry-timeout and requeued, never FINed
        assert wait_for(lambda: requeued() > 0, timeout=30), relay.stderr
        destination.start()
        assert wait_for(source_settled(source, "dl"), timeout=120), relay.stderr
        relay.stop()
    assert set(collected(destination, "dl")) == set(bodies)  # duplicates allowed, none lost


def test_sigterm_while_the_destination_is_down_requeues_what_it_held(nsqd_factory, tmp_path):
    source, destination = nsqd_factory(), nsqd_factory()
    bodies = [b"sd-%d" % i for i in range(30_000)]
    fill(source, "sd", bodies)
    watch(destination, "sd")
    with RelayProcess(tmp_path, "--topic", "sd", "--retry-timeout", "2s", "--max-in-flight", 1000,
                      *relay_args(source, destination)) as relay:
        assert wait_for(lambda: received(destination, "sd") >= 3000, timeout=60), relay.stderr
        destination.stop()
        started = time.monotonic()
        stderr = relay.stop(signal.SIGTERM)
    # the drain waited for the destination up to --retry-timeout, then requeued what it held
    assert relay.returncode == 130 and time.monotonic() - started < 20, stderr
    counts = final_counts(stderr)
    assert counts["requeued"] > 0, counts
    destination.start()
    left, arrived = _nothing_lost(source, destination, "sd", bodies)
    assert counts["relayed"] == len(bodies) - len(left) <= len(arrived)  # every FIN counted


def test_connections_reset_on_both_sides(nsqd_factory, tmp_path):
    source = nsqd_factory(msg_timeout_ms=2000)
    destination = nsqd_factory()
    bodies = [b"cr-%d" % i for i in range(30_000)]
    fill(source, "cr", bodies)
    watch(destination, "cr")
    with ChaosProxy(source.tcp_address, seed=5) as to_source, \
            ChaosProxy(destination.tcp_address, seed=6) as to_destination:
        to_source.start_chaos(0.1, 0.4)
        to_destination.start_chaos(0.1, 0.4)
        with RelayProcess(tmp_path, "--topic", "cr", "--max-in-flight", 500,
                          "--consumer-opt", "reconnect_interval=50ms",
                          "--consumer-opt", "max_reconnect_interval=300ms",
                          "--nsqd-tcp-address", to_source.address,
                          "--destination-nsqd-tcp-address", to_destination.address) as relay:
            assert wait_for(lambda: to_source.faults >= 3 and to_destination.faults >= 3,
                            timeout=60), relay.stderr
            assert wait_for(source_settled(source, "cr"), timeout=120), (
                relay.stderr[-2000:], source.channel_stats("cr", SOURCE_CHANNEL))
            to_source.stop_chaos()
            to_destination.stop_chaos()
            relay.stop()
        faults = (to_source.faults, to_destination.faults)
    assert relay.returncode == 130, relay.stderr[-2000:]
    assert set(collected(destination, "cr")) == set(bodies), faults  # at least once
