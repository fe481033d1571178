"""The publish engine (behind nsqcli.lib.Publisher) against an in-memory nsqd: batching, limits,
retries, exact accounting."""

from __future__ import annotations

import asyncio

import pytest

from nsqcli.lib.publisher.batch import Limits, Numbers, cut_batches, limit_from_error
from nsqcli.lib.publisher.config import FAN_OUT, PublisherConfig
from nsqcli.lib.publisher.engine import PublishEngine
from nsqcli.lib.publisher.errors import NsqdRefusedError, NsqdUnreachableError, RecordTooLargeError

from fake_publish import FakeNsqd
from polling import until


def make(nsqds, callbacks=None, **options):
    by_address = {n.address: n for n in nsqds}

    async def connect(address, kwargs, timeout):
        return await by_address[address].connect(address, kwargs, timeout)

    config = PublisherConfig(topic="t", addresses=[n.address for n in nsqds], **options)
    logs: list[str] = []
    return PublishEngine(config, connect=connect, log=logs.append, **(callbacks or {})), logs


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def held(nsqd):
    """Publishes the fake nsqd holds unanswered (``hold``)."""
    return sum(len(conn.pending) for conn in nsqd.conns)


def records(n, start=1):
    return [b"%d" % i for i in range(start, start + n)]


def test_cut_batches_respects_count_and_bytes():
    limits = Limits(max_msg_size=100, max_body_size=1000, batch_count=3, batch_bytes=10_000)
    assert list(cut_batches([b"x"] * 7, limits)) == [(0, 3), (3, 6), (6, 7)]
    limits = Limits(max_msg_size=100, max_body_size=4 + 3 * 24, batch_count=100)
    # each record costs 20 + 4 bytes: 3 fit in the body budget
    assert list(cut_batches([b"y" * 20] * 7, limits)) == [(0, 3), (3, 6), (6, 7)]


def test_cut_batches_agrees_with_a_record_by_record_cut():
    """Each batch takes records while they fit (count, and body bytes with the 4-byte prefix of
    each), at least one; checked against that rule written out plainly on varied inputs."""
    import random

    def plain_cut(records, limits):
        start = 0
        while start < len(records):
            stop, size = start, 0
            while stop < len(records) and stop - start < limits.max_count and (
                    stop == start or size + len(records[stop]) + 4 <= limits.body_budget):
                size += len(records[stop]) + 4
                stop += 1
            yield start, stop
            start = stop

    rng = random.Random(7)
    for _ in range(2000):
        bodies = [b"x" * rng.randint(1, 300) for _ in range(rng.randint(0, 60))]
        limits = Limits(max_body_size=rng.choice([None, 200, 1000, 5000]),
                        batch_count=rng.randint(1, 20), batch_bytes=rng.randint(1, 3000))
        assert list(cut_batches(bodies, limits)) == list(plain_cut(bodies, limits)), (bodies, limits)


def test_limit_from_error_reads_nsqds_text():
    assert limit_from_error("MPUB message too big 2000 > 1024") == 1024
    assert limit_from_error("MPUB body too big 9 > 8") == 8
    assert limit_from_error("something else") is None


def test_numbers_slices_and_lists():
    assert Numbers(5).slice(2, 4).all(2) == [7, 8]
    assert Numbers(0, [1, 3, 9]).slice(1, 3).all(2) == [3, 9]


def test_everything_published_in_order_and_acknowledged():
    nsqd = FakeNsqd()

    async def main():
        publisher, _ = make([nsqd], batch_size=100)
        await publisher.start()
        for start in range(1, 10_001, 1000):
            assert await publisher.publish(records(1000, start)) == range(start, start + 1000)
        return await publisher.close()

    report = run(main())
    assert nsqd.messages == records(10_000)
    assert (report.submitted, report.acknowledged, report.given_up) == (10_000, 10_000, 0)
    assert len(nsqd.commands) >= 100 and all(c.startswith(b"MPUB t") for c in nsqd.commands)


def test_empty_records_are_skipped_and_numbering_counts_them():
    nsqd = FakeNsqd(max_msg_size=3)

    async def main():
        publisher, _ = make([nsqd], skip_oversized=True)
        await publisher.start()
        await publisher.publish([b"a", b"", b"toolong", b"b"])
        return await publisher.close()

    report, = [run(main())]
    assert nsqd.messages == [b"a", b"b"]
    assert report.skipped_empty == 1 and report.skipped_oversized == 1
    assert report.submitted == report.acknowledged == 2


def test_oversized_record_stops_with_its_number():
    nsqd = FakeNsqd(max_msg_size=4)

    async def main():
        publisher, _ = make([nsqd], max_msg_size=4)
        await publisher.start()
        numbers = await publisher.publish([b"a", b"", b"b", b"12345", b"c"])
        return numbers, publisher.stopped, await publisher.close()

    numbers, stopped, report = run(main())
    assert numbers == range(1, 6) and stopped
    assert isinstance(report.error, RecordTooLargeError)
    assert (report.error.number, report.error.size, report.error.limit) == (4, 5, 4)
    assert "record 4 is 5 bytes" in report.error.message
    assert nsqd.messages == [b"a", b"b"]
    assert report.given_up == 2 and [n for n, _ in report.failed] == [4, 5]


def test_learns_smaller_max_msg_size_from_nsqd_and_recuts():
    nsqd = FakeNsqd(max_msg_size=10)

    async def main():
        publisher, logs = make([nsqd], skip_oversized=True)
        await publisher.start()
        await publisher.publish([b"short", b"x" * 11, b"also"])
        return await publisher.close(), logs

    report, logs = run(main())
    assert nsqd.messages == [b"short", b"also"]
    assert report.acknowledged == 2 and report.skipped_oversized == 1
    assert report.given_up == 0 and report.submitted == 2
    assert any("max-msg-size is 10" in line for line in logs)


def test_learns_max_body_size_and_splits():
    nsqd = FakeNsqd(max_body_size=60)

    async def main():
        publisher, _ = make([nsqd])
        await publisher.start()
        await publisher.publish([b"r%02d" % i for i in range(30)])
        return await publisher.close()

    report = run(main())
    assert sorted(nsqd.messages) == [b"r%02d" % i for i in range(30)]
    assert report.acknowledged == 30


def test_connection_lost_batches_are_resent():
    nsqd = FakeNsqd()

    async def main():
        publisher, _ = make([nsqd], batch_size=10)
        await publisher.start()
        nsqd.hold = True
        await publisher.publish(records(35))
        await until(lambda: held(nsqd) == 3)  # the full batches; the partial waits for room
        nsqd.drop()
        nsqd.hold = False
        return await publisher.close()

    report = run(main())
    assert sorted(nsqd.messages, key=int) == records(35)
    assert report.acknowledged == 35 and nsqd.connects == 2


def test_retry_timeout_gives_exact_unacknowledged_count():
    nsqd = FakeNsqd()

    async def main():
        publisher, _ = make([nsqd], batch_size=10, retry_timeout=0.2)
        await publisher.start()
        await publisher.publish(records(20))
        await until(lambda: publisher.report.acknowledged == 20)
        nsqd.hold = True
        nsqd.refuse = True
        await publisher.publish(records(25, 21))
        await until(lambda: held(nsqd) == 2)  # the full batches; the partial waits for room
        nsqd.drop()
        more = await publisher.publish(records(5, 46))
        return more, await publisher.close()

    _, report = run(main())
    assert report.acknowledged == len(nsqd.messages) == 20
    assert report.submitted == 50 and report.given_up == 30
    assert [n for n, _ in report.failed] == list(range(21, 51))
    assert "no nsqd reachable" in report.error.message


def test_unreachable_at_start_is_an_address_error():
    nsqd = FakeNsqd()
    nsqd.refuse = True

    async def main():
        publisher, _ = make([nsqd])
        await publisher.start()

    with pytest.raises(NsqdUnreachableError) as info:
        run(main())
    assert "127.0.0.1:4150" in info.value.message and "refused" in info.value.message


def test_round_robin_spreads_and_survives_one_dead_nsqd():
    a, b = FakeNsqd("a:1"), FakeNsqd("b:2")
    b.refuse = True

    async def main():
        publisher, logs = make([a, b], batch_size=10)
        await publisher.start()
        await publisher.publish(records(100))
        b.refuse = False
        await until(lambda: all(dest.up for dest in publisher.destinations))  # b reconnected
        await publisher.publish(records(100, 101))
        return await publisher.close(), logs

    report, logs = run(main())
    assert sorted(a.messages + b.messages, key=int) == records(200)
    assert b.messages, "the nsqd that came back gets batches again"
    assert report.acknowledged == 200


def test_fan_out_sends_every_record_to_every_nsqd():
    a, b = FakeNsqd("a:1"), FakeNsqd("b:2")

    async def main():
        publisher, _ = make([a, b], mode=FAN_OUT, batch_size=7)
        await publisher.start()
        await publisher.publish(records(50))
        return await publisher.close()

    report = run(main())
    assert a.messages == b.messages == records(50)
    assert report.acknowledged == 50


def test_fan_out_counts_records_missing_from_one_nsqd():
    a, b = FakeNsqd("a:1"), FakeNsqd("b:2")

    async def main():
        publisher, _ = make([a, b], mode=FAN_OUT, batch_size=10, retry_timeout=0.2)
        await publisher.start()
        await publisher.publish(records(10))
        await until(lambda: publisher.report.acknowledged == 10)  # by both nsqds
        b.refuse = True
        b.drop()
        await publisher.publish(records(10, 11))
        return await publisher.close()

    report = run(main())
    assert a.messages == records(20) and b.messages == records(10)
    assert report.acknowledged == 10 and report.given_up == 10


def test_fatal_error_stops_and_names_the_address():
    nsqd = FakeNsqd()
    nsqd.error_code = "E_BAD_TOPIC"

    async def main():
        publisher, _ = make([nsqd])
        await publisher.start()
        await publisher.publish(records(5))
        return await publisher.close()

    report = run(main())
    assert report.given_up == 5
    assert "127.0.0.1:4150" in report.error.message and "E_BAD_TOPIC" in report.error.message
    assert isinstance(report.error, NsqdRefusedError) and report.error.code == "E_BAD_TOPIC"
    assert report.error.address == "127.0.0.1:4150"


def test_defer_uses_dpub():
    nsqd = FakeNsqd()

    async def main():
        publisher, _ = make([nsqd], defer_ms=1500)
        await publisher.start()
        await publisher.publish(records(3))
        return await publisher.close()

    report = run(main())
    assert nsqd.deferred == [(1500, b"1"), (1500, b"2"), (1500, b"3")]
    assert report.acknowledged == 3


def test_rate_limits_records_per_second():
    nsqd = FakeNsqd()

    async def main():
        publisher, _ = make([nsqd], rate=200)
        await publisher.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await publisher.publish(records(60))
        report = await publisher.close()
        return report, loop.time() - started

    report, elapsed = run(main())
    assert report.acknowledged == 60
    assert 0.2 <= elapsed < 2.0  # 60 records at 200/s with a 1 s burst cap ... at least 0.25 s


def test_config_validation():
    with pytest.raises(ValueError):
        PublisherConfig(topic="t", addresses=[])
    with pytest.raises(ValueError):
        PublisherConfig(topic="t", addresses=["a:1"], mode="random")
    with pytest.raises(ValueError):
        PublisherConfig(topic="t", addresses=["a:1"], rate=0)


def test_learned_limit_without_skip_publishes_the_records_before_the_oversized_one():
    nsqd = FakeNsqd(max_msg_size=5)

    async def main():
        publisher, _ = make([nsqd])
        await publisher.start()
        await publisher.publish([b"a", b"b", b"toolong", b"c"])
        return await publisher.close()

    report = run(main())
    assert nsqd.messages == [b"a", b"b"]
    assert "record 3 is 7 bytes" in report.error.message
    assert isinstance(report.error, RecordTooLargeError) and report.error.limit == 5
    assert (report.submitted, report.acknowledged, report.given_up) == (4, 2, 2)
    assert [n for n, _ in report.failed] == [3, 4]


def test_on_acknowledged_reports_every_acknowledged_batch():
    nsqd = FakeNsqd()
    seen = []

    async def main():
        publisher, _ = make([nsqd], {"on_acknowledged": seen.extend}, batch_size=3)
        await publisher.start()
        await publisher.publish([b"a", b"", b"b", b"c", b"d"])
        return await publisher.close()

    report = run(main())
    assert sorted(seen) == [1, 3, 4, 5] and report.acknowledged == 4


def test_on_acknowledged_leaves_out_records_that_failed_after_a_recut():
    nsqd = FakeNsqd(max_msg_size=5)
    seen = []

    async def main():
        publisher, _ = make([nsqd], {"on_acknowledged": seen.extend})
        await publisher.start()
        await publisher.publish([b"a", b"toolong", b"b"])
        return await publisher.close()

    report = run(main())
    assert seen == [1] and nsqd.messages == [b"a"]
    assert (report.acknowledged, report.given_up) == (1, 2)


def test_retry_clock_only_runs_while_records_wait():
    nsqd = FakeNsqd()

    async def main():
        publisher, _ = make([nsqd], retry_timeout=0.1)
        await publisher.start()
        nsqd.refuse = True
        nsqd.drop()
        await asyncio.sleep(0.3)  # down for longer than the retry timeout, but idle
        nsqd.refuse = False
        await publisher.publish([b"after"])
        return publisher.stopped, await publisher.close()

    stopped, report = run(main())
    assert not stopped and report.acknowledged == 1 and report.error is None
    assert nsqd.messages == [b"after"]


def test_records_over_1mib_go_out_when_nsqd_allows_them():
    nsqd = FakeNsqd(max_msg_size=3 * 1024 * 1024, max_body_size=8 * 1024 * 1024)
    big = b"b" * (2 * 1024 * 1024)

    async def main():
        publisher, _ = make([nsqd])
        await publisher.start()
        await publisher.publish([b"small", big])
        return await publisher.close()

    report = run(main())
    assert report.acknowledged == 2 and nsqd.messages == [b"small", big]


def test_a_record_too_large_for_any_mpub_body_is_named():
    nsqd = FakeNsqd(max_msg_size=10_000_000, max_body_size=1000)

    async def main():
        publisher, _ = make([nsqd])
        await publisher.start()
        await publisher.publish([b"a", b"x" * 2000, b"b"])
        return await publisher.close()

    report = run(main())
    assert "record 2 is 2000 bytes" in report.error.message
    # "b" was already re-batched on its own when the limit became known: it still goes out
    assert nsqd.messages == [b"a", b"b"]
    assert (report.acknowledged, report.given_up) == (2, 1)
    assert [n for n, _ in report.failed] == [2]


def test_batches_failing_with_e_mpub_failed_are_retried_then_given_up():
    nsqd = FakeNsqd()
    nsqd.error_code = "E_MPUB_FAILED"

    async def main():
        publisher, _ = make([nsqd], retry_timeout=0.2)
        await publisher.start()
        await publisher.publish(records(3))
        return await publisher.close()

    report = run(main())
    assert nsqd.connects > 1  # retried on fresh connections
    assert (report.acknowledged, report.given_up) == (0, 3)
    assert [n for n, _ in report.failed] == [1, 2, 3]


def test_e_mpub_failed_then_recovery_publishes_everything():
    nsqd = FakeNsqd()
    nsqd.error_code = "E_MPUB_FAILED"

    async def main():
        publisher, _ = make([nsqd], retry_timeout=5)
        await publisher.start()
        await publisher.publish(records(3))
        await until(lambda: nsqd.commands)  # an MPUB was refused
        nsqd.error_code = None
        return await publisher.close()

    report = run(main())
    assert report.acknowledged == 3 and nsqd.messages == records(3)


def test_after_a_stop_further_records_are_counted_and_never_sent():
    nsqd = FakeNsqd()

    async def main():
        publisher, _ = make([nsqd], max_msg_size=4)
        await publisher.start()
        assert await publisher.publish([b"a", b"toolong"]) == range(1, 3) and publisher.stopped
        assert await publisher.publish([b"b", b"", b"c"]) == range(3, 6)
        return await publisher.close()

    report = run(main())
    assert nsqd.messages == [b"a"]
    assert (report.submitted, report.acknowledged, report.given_up) == (4, 1, 3)
    assert [n for n, _ in report.failed] == [2, 3, 5] and report.skipped_empty == 1


def test_records_topping_up_a_partial_batch_after_an_empty_one_keep_their_numbers():
    """A partial batch whose numbers skip an empty record, topped up by the next publish: every
    record keeps its number (nsq-pub's --failed-file and the callbacks depend on it; the join
    used to drop the numbers of the records that topped it up)."""
    nsqd = FakeNsqd()

    async def main():
        publisher, _ = make([nsqd], batch_size=10, retry_timeout=0.2)
        await publisher.start()
        nsqd.hold = True
        await publisher.publish(records(10))        # 1-10: one full batch, left unanswered
        await publisher.publish([b"a", b"", b"b"])  # 11-13: a partial batch, 12 is empty
        await publisher.publish([b"c", b"d"])       # 14-15 top it up
        nsqd.refuse = True
        nsqd.drop()
        return await publisher.close()

    report = run(main())
    assert (report.given_up, report.skipped_empty, report.acknowledged) == (14, 1, 0)
    assert [n for n, _ in report.failed] == list(range(1, 12)) + [13, 14, 15]
    assert [r for _, r in report.failed][10:] == [b"a", b"b", b"c", b"d"]


@pytest.mark.parametrize("records", [[b"x"], [b"a", b"bc", b"\n" * 300], [b"%d" % i for i in range(1000)]])
def test_a_batch_is_the_protocol_cores_mpub(records):
    from nsqcli.lib.protocol.commands import mpub
    from nsqcli.lib.publisher.batch import encode_batch

    assert encode_batch(b"t", records, Numbers(1), None).commands == [mpub("t", records)]


def test_limits_derive_the_batch_targets_again_when_a_limit_is_learned():
    limits = Limits(batch_count=1000, batch_bytes=256 * 1024)
    assert (limits.max_count, limits.body_budget, limits.msg_limit) == (1000, 256 * 1024, 1 << 62)
    limits.max_body_size = 104
    assert (limits.max_count, limits.body_budget) == (20, 100)
    limits.batch_count = 0
    assert limits.max_count == 1
    assert limits.learn_msg_size(50) and limits.msg_limit == 50
    assert not limits.learn_msg_size(60) and limits.msg_limit == 50
