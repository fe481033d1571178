"""nsqcli.lib.Publisher when nsqd goes away, in both broker modes: resent until acknowledged,
given up exactly after retry_timeout, fan-out to several nsqds, and the relay pattern (a source
message FINed only once the destination acknowledged its copy, REQueued when it was given up)."""

from __future__ import annotations

import asyncio

import pytest

import nsqcli.lib as nsq
from nsqcli.lib import RetryTimeoutError

from polling import until
from publisher_helpers import Outcomes, message_count, read_bodies, run

pytestmark = pytest.mark.timeout(120)


def test_records_handed_over_while_nsqd_restarts_are_resent_and_acknowledged(nsqd):
    outcomes = Outcomes()
    before = [b"before %d" % i for i in range(300)]
    during = [b"during %d" % i for i in range(300)]

    async def main():
        async with nsq.Publisher("pub_restart", nsqd.tcp_address, batch_size=50,
                                 retry_timeout=30, **outcomes.callbacks()) as publisher:
            await publisher.publish_all(before)
            await asyncio.to_thread(nsqd.stop)
            # handed over while nsqd is down (publish() waits for room: the backlog is full)
            handing = asyncio.ensure_future(publisher.publish(during))
            await until(lambda: publisher.report.submitted == 600)
            assert publisher.outstanding == 300 and not publisher.stopped
            await asyncio.to_thread(nsqd.start)
            assert await handing == range(301, 601)
            return await publisher.flush()

    report = run(main())
    assert (report.submitted, report.acknowledged, report.given_up) == (600, 600, 0)
    assert outcomes.acknowledged == list(range(1, 601)) and outcomes.given_up == []
    # what was queued before the stop survives it (nsqd's data path) or not; the rest is there
    kept = run(read_bodies(nsqd, "pub_restart", nsqd.topic_stats("pub_restart")["depth"]))
    assert set(during) <= set(kept) <= set(before) | set(during)


def test_an_nsqd_gone_for_longer_than_retry_timeout_gives_up_every_record_by_number(nsqd):
    outcomes = Outcomes()
    bodies = [b"lost %d" % i for i in range(250)]

    async def main():
        publisher = nsq.Publisher("pub_gone", nsqd.tcp_address, batch_size=20,
                                  retry_timeout=0.5, **outcomes.callbacks())
        await publisher.start()
        await publisher.publish([b"kept"])
        await publisher.flush()
        await asyncio.to_thread(nsqd.stop)
        await publisher.publish(bodies)
        report = await publisher.close()
        return report, publisher.stopped

    report, stopped = run(main())
    assert stopped and isinstance(report.error, RetryTimeoutError)
    assert str(report.error).startswith(f"no nsqd reachable for 0.5s (last: {nsqd.tcp_address}")
    assert (report.submitted, report.acknowledged, report.given_up) == (251, 1, 250)
    assert outcomes.acknowledged == [1] and outcomes.given_up == list(range(2, 252))
    assert list(report.failed_records()) == bodies


def test_fan_out_puts_every_record_on_every_nsqd(nsqd_factory):
    one, two = nsqd_factory(), nsqd_factory()
    outcomes = Outcomes()
    bodies = [b"fan %d" % i for i in range(1200)]

    async def main():
        async with nsq.Publisher("pub_fan", [one.tcp_address, two.tcp_address], mode="fan-out",
                                 batch_size=100, **outcomes.callbacks()) as publisher:
            return await publisher.publish_all(bodies)

    report = run(main())
    assert report.acknowledged == 1200 and outcomes.acknowledged == list(range(1, 1201))
    assert message_count(one, "pub_fan") == message_count(two, "pub_fan") == 1200
    assert run(read_bodies(one, "pub_fan", 1200)) == bodies
    assert run(read_bodies(two, "pub_fan", 1200)) == bodies


def test_fan_out_gives_up_records_one_nsqd_never_got(nsqd_factory):
    """Acknowledged means every nsqd acknowledged: records the stopped nsqd did not get are given
    up (and named) even though the other nsqd has them."""
    one, two = nsqd_factory(), nsqd_factory()
    outcomes = Outcomes()

    async def main():
        publisher = nsq.Publisher("pub_fan_gone", [one.tcp_address, two.tcp_address],
                                  mode="fan-out", retry_timeout=0.5, **outcomes.callbacks())
        await publisher.start()
        await publisher.publish([b"both %d" % i for i in range(10)])
        await publisher.flush()
        await asyncio.to_thread(two.stop)
        await publisher.publish([b"one only %d" % i for i in range(10)])
        return await publisher.close()

    report = run(main())
    assert (report.acknowledged, report.given_up) == (10, 10)
    assert outcomes.acknowledged == list(range(1, 11)) and outcomes.given_up == list(range(11, 21))
    assert isinstance(report.error, RetryTimeoutError) and report.error.address == two.tcp_address
    assert message_count(one, "pub_fan_gone") == 20


async def relay(source, destination_address: str, n: int, retry_timeout: float = 30,
                after_start=None) -> tuple:
    """What nsq-to-nsq will do: each source message is published to the destination and FINed
    only once the destination acknowledged it, REQueued if it was given up."""
    pending: dict[int, nsq.Message] = {}
    answered: dict[str, int] = {"fin": 0, "req": 0}

    def on_acknowledged(numbers):
        for number in numbers:
            pending.pop(number).finish()
            answered["fin"] += 1

    def on_given_up(numbers):
        for number in numbers:
            pending.pop(number).requeue(delay=0, backoff=False)
            answered["req"] += 1

    received = 0
    async with nsq.Reader("relay_src", "relay", nsqd_tcp_addresses=[source.tcp_address],
                          max_in_flight=200) as reader:
        publisher = nsq.Publisher("relay_dst", destination_address, retry_timeout=retry_timeout,
                                  on_acknowledged=on_acknowledged, on_given_up=on_given_up)
        await publisher.start()
        if after_start is not None:
            await after_start()
        async for message in reader.messages():
            received += 1
            pending[received] = message  # numbered before publish(): callbacks may come first
            await publisher.publish(message.body)
            if received == n:
                break
        report = await publisher.close()
    return report, answered, pending


def test_relay_fins_a_source_message_only_after_the_destination_acknowledged_it(nsqd_factory):
    source, destination = nsqd_factory(), nsqd_factory()
    bodies = [b"relayed %d" % i for i in range(500)]
    source.mpub("relay_src", bodies)

    report, answered, pending = run(relay(source, destination.tcp_address, 500))
    assert report.acknowledged == 500 and answered == {"fin": 500, "req": 0} and pending == {}
    assert sorted(run(read_bodies(destination, "relay_dst", 500))) == sorted(bodies)
    channel = source.channel_stats("relay_src", "relay")
    assert channel["depth"] == 0 and channel["in_flight_count"] == 0
    assert channel["requeue_count"] == 0


def test_relay_requeues_what_the_destination_never_acknowledged(nsqd_factory):
    source, destination = nsqd_factory(), nsqd_factory()
    bodies = [b"kept %d" % i for i in range(50)]
    source.mpub("relay_src", bodies)

    async def main():
        await asyncio.to_thread(destination.stop)
        with pytest.raises(nsq.NsqdUnreachableError):
            await relay(source, destination.tcp_address, 50)
        await asyncio.to_thread(destination.start)

        async def outage():  # reachable at start, gone before the first message
            await asyncio.to_thread(destination.stop)

        return await relay(source, destination.tcp_address, 50, retry_timeout=0.5,
                           after_start=outage)

    report, answered, pending = run(main())
    assert answered == {"fin": 0, "req": 50} and pending == {}
    assert (report.acknowledged, report.given_up) == (0, 50)
    assert isinstance(report.error, RetryTimeoutError)
    channel = source.channel_stats("relay_src", "relay")
    assert channel["in_flight_count"] == 0 and channel["depth"] == 50
    assert channel["requeue_count"] == 50
