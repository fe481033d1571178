"""nsqcli.lib.Publisher, the public bulk publisher, against the `nsqd` fixture (embedded nsqd, or a
real one via NSQCLI_TEST_NSQD): inputs, numbering, callbacks and exact reports.

Faults (restarts, retry timeouts, fan-out, the relay pattern) are in test_publisher_faults.py;
the engine's batching and limits against an in-memory nsqd in test_publisher_engine.py.
"""

from __future__ import annotations

import asyncio

import pytest

import nsqcli.lib as nsq
from nsqcli.broker.daemons import free_port
from nsqcli.lib import NsqdRefusedError, NsqdUnreachableError, PublishError, RecordTooLargeError
from nsqcli.lib.protocol.errors import NSQTimeoutError

from fake_nsqd import FakeNSQD
from publisher_helpers import Outcomes, message_count, read_bodies, run

pytestmark = pytest.mark.timeout(90)


def test_the_names_are_exported_from_nsqcli_lib():
    from nsqcli.lib.publisher import Publisher, PublishReport

    assert nsq.Publisher is Publisher and nsq.PublishReport is PublishReport
    for name in ("Publisher", "PublishReport", "PublishError", "NsqdUnreachableError",
                 "NsqdRefusedError", "RecordTooLargeError", "RetryTimeoutError"):
        assert name in nsq.__all__
    assert issubclass(nsq.PublishError, nsq.Error)
    for cls in (nsq.NsqdUnreachableError, nsq.NsqdRefusedError, nsq.RecordTooLargeError,
                nsq.RetryTimeoutError):
        assert issubclass(cls, PublishError)


def test_an_async_iterable_is_published_in_order_and_every_number_acknowledged(nsqd):
    outcomes = Outcomes()
    bodies = [b"body %05d" % i for i in range(2500)]

    async def source():
        for body in bodies:
            yield body
            if len(body) % 7 == 0:
                await asyncio.sleep(0)  # a source that suspends now and then

    async def main():
        async with nsq.Publisher("pub_api_async", nsqd.tcp_address, batch_size=100,
                                 **outcomes.callbacks()) as publisher:
            report = await publisher.publish_all(source())
        return report, await read_bodies(nsqd, "pub_api_async", 2500)

    report, read = run(main())
    assert (report.submitted, report.acknowledged, report.given_up) == (2500, 2500, 0)
    assert report.ok and report.error is None and report.failed == []
    assert outcomes.acknowledged == list(range(1, 2501))
    assert outcomes.given_up == outcomes.skipped == []
    assert read == bodies
    assert message_count(nsqd, "pub_api_async") == 2500


def test_bodies_and_batches_mix_and_are_numbered_in_order(nsqd):
    outcomes = Outcomes()

    async def main():
        async with nsq.Publisher("pub_api_mixed", [nsqd.tcp_address],
                                 **outcomes.callbacks()) as publisher:
            first = await publisher.publish(b"one")                    # 1
            second = await publisher.publish([b"two", "three", b""])   # 2-4, 4 is empty
            third = await publisher.publish(bytearray(b"five"))        # 5
            report = await publisher.publish_all(
                [b"six", [b"seven", b"eight"], "nine", (b"ten",), b"", memoryview(b"twelve")])
        return (first, second, third), report

    ranges, report = run(main())
    assert ranges == (range(1, 2), range(2, 5), range(5, 6))
    assert (report.submitted, report.acknowledged, report.skipped_empty) == (10, 10, 2)
    assert outcomes.skipped == [4, 11]
    assert outcomes.acknowledged == [n for n in range(1, 13) if n not in (4, 11)]
    assert sorted(run(read_bodies(nsqd, "pub_api_mixed", 10))) == sorted(
        [b"one", b"two", b"three", b"five", b"six", b"seven", b"eight", b"nine", b"ten",
         b"twelve"])


def test_a_trickle_is_published_at_once_not_when_a_batch_fills(nsqd):
    """Each record of a slow source is acknowledged before the next one is even produced."""
    acknowledged: list[int] = []

    async def main():
        changed = asyncio.Event()

        def on_acknowledged(numbers):
            acknowledged.extend(numbers)
            changed.set()

        async with nsq.Publisher("pub_api_trickle", nsqd.tcp_address, batch_size=1000,
                                 on_acknowledged=on_acknowledged) as publisher:
            async def source():
                for i in range(1, 6):
                    yield b"slow %d" % i
                    while len(acknowledged) < i:  # nothing else will come until it is out
                        changed.clear()
                        await asyncio.wait_for(changed.wait(), 10)

            return await publisher.publish_all(source())

    report = run(main())
    assert acknowledged == [1, 2, 3, 4, 5] and report.acknowledged == 5


def test_records_over_nsqds_limit_stop_publishing_with_their_number(nsqd_factory):
    """nsqd does not announce --max-msg-size: its E_BAD_MESSAGE teaches the limit; the records
    before the first oversized one go out, it and the rest are given up, by number."""
    nsqd = nsqd_factory(max_msg_size=100)
    outcomes = Outcomes()
    bodies = [b"a" * 50, b"b" * 50, b"c" * 150, b"d" * 50, b"e" * 200]

    async def main():
        with pytest.raises(RecordTooLargeError) as info:
            async with nsq.Publisher("pub_api_big", nsqd.tcp_address,
                                     **outcomes.callbacks()) as publisher:
                await publisher.publish(bodies)
        return info.value

    error = run(main())
    assert (error.number, error.size, error.limit) == (3, 150, 100)
    assert str(error) == "record 3 is 150 bytes, larger than nsqd's max-msg-size 100"
    report = error.report
    assert (report.submitted, report.acknowledged, report.given_up) == (5, 2, 3)
    assert outcomes.acknowledged == [1, 2] and outcomes.given_up == [3, 4, 5]
    assert report.given_up_numbers == [3, 4, 5] and list(report.failed_records()) == bodies[2:]
    assert message_count(nsqd, "pub_api_big") == 2


def test_skip_oversized_skips_exactly_the_records_nsqd_refuses(nsqd_factory):
    nsqd = nsqd_factory(max_msg_size=100)
    outcomes = Outcomes()
    bodies = [b"%03d" % i + (b"x" * 150 if i % 10 == 3 else b"") for i in range(1, 301)]

    async def main():
        async with nsq.Publisher("pub_api_skip", nsqd.tcp_address, skip_oversized=True,
                                 **outcomes.callbacks()) as publisher:
            return await publisher.publish_all(bodies)

    report = run(main())
    oversized = [n for n in range(1, 301) if n % 10 == 3]
    assert outcomes.skipped == oversized and report.skipped_oversized == 30
    assert outcomes.acknowledged == [n for n in range(1, 301) if n % 10 != 3]
    assert (report.submitted, report.acknowledged, report.given_up) == (270, 270, 0)
    assert report.ok
    assert message_count(nsqd, "pub_api_skip") == 270


def test_an_error_no_retry_fixes_is_nsqd_refused_error(nsqd):
    """A DPUB delay beyond nsqd's --max-req-timeout (1 h): E_INVALID, nsqd's code and text."""
    outcomes = Outcomes()

    async def main():
        with pytest.raises(NsqdRefusedError) as info:
            async with nsq.Publisher("pub_api_refused", nsqd.tcp_address,
                                     defer_ms=10 * 3600 * 1000, **outcomes.callbacks()) as publisher:
                await publisher.publish([b"a", b"b", b"c"])
        return info.value

    error = run(main())
    assert error.code == "E_INVALID" and error.address == nsqd.tcp_address
    assert str(error).startswith(f"{nsqd.tcp_address} while publishing to topic pub_api_refused: "
                                 "E_INVALID")
    assert error.report.given_up == 3 and error.report.acknowledged == 0
    assert outcomes.given_up == [1, 2, 3] and outcomes.acknowledged == []


def test_an_unreachable_nsqd_at_start_names_the_address_and_the_cause():
    address = f"127.0.0.1:{free_port()}"

    async def main():
        with pytest.raises(NsqdUnreachableError) as info:
            async with nsq.Publisher("t", address, connect_timeout=2):
                pass
        publisher = nsq.Publisher("t", address, connect_timeout=2)
        with pytest.raises(NsqdUnreachableError):
            await publisher.publish(b"x")  # publish() starts it
        with pytest.raises(RuntimeError, match="failed to start"):
            await publisher.publish(b"x")  # never a publisher that waits for nothing
        return info.value

    error = run(main())
    assert error.address == address and error.__cause__ is not None
    assert address in str(error) and "Connection refused" in str(error)
    assert "\n" not in str(error)


def test_connect_timeout_bounds_the_whole_handshake_not_only_the_tcp_connect():
    """An nsqd that accepts and then never answers IDENTIFY: start() gives up after
    connect_timeout, not after AsyncConn's per-stage ``timeout`` (10 s here)."""
    async def silent_after_identify(peer):
        await peer.expect("IDENTIFY")
        await peer.wait_closed(timeout=30)  # reads, never answers, until the client hangs up

    async def main():
        async with FakeNSQD(silent_after_identify) as fake:
            loop = asyncio.get_running_loop()
            began = loop.time()
            with pytest.raises(NsqdUnreachableError) as info:
                async with nsq.Publisher("t", fake.address, timeout=10, connect_timeout=0.3):
                    pass
            elapsed = loop.time() - began
            await fake.wait_until(lambda: fake.peers[0].closed)  # the attempt's socket was closed
            return info.value, elapsed

    error, elapsed = run(main(), timeout=60)
    assert elapsed < 5, f"start() took {elapsed:.1f}s: connect_timeout=0.3 was not applied"
    # wait_ready's bound or the stage timer (capped at connect_timeout), whichever fires first
    assert isinstance(error.__cause__, NSQTimeoutError), repr(error.__cause__)


def test_a_callback_that_raises_breaks_no_accounting(nsqd, caplog):
    def broken(numbers):
        raise RuntimeError("user bug")

    async def main():
        async with nsq.Publisher("pub_api_cb", nsqd.tcp_address, batch_size=10,
                                 on_acknowledged=broken) as publisher:
            return await publisher.publish_all([b"m%d" % i for i in range(50)])

    report = run(main())
    assert report.acknowledged == 50 and report.ok
    assert "publisher callback" in caplog.text and "user bug" in caplog.text


def test_explicit_start_and_close_without_async_with(nsqd):
    async def main():
        publisher = nsq.Publisher("pub_api_explicit", nsqd.tcp_address)
        await publisher.start()
        numbers = await publisher.publish([b"x", b"y"])
        assert publisher.outstanding <= 2
        flushed = await publisher.flush()
        assert publisher.outstanding == 0 and flushed.acknowledged == 2
        report = await publisher.close()
        assert await publisher.close() is report
        with pytest.raises(RuntimeError, match="closed"):
            await publisher.publish(b"z")
        return numbers, report

    numbers, report = run(main())
    assert numbers == range(1, 3) and report.acknowledged == 2


@pytest.mark.parametrize("make, error", [
    (lambda: nsq.Publisher("bad topic!", "127.0.0.1:4150"), ValueError),
    (lambda: nsq.Publisher("t", "no-port"), ValueError),
    (lambda: nsq.Publisher("t", []), ValueError),
    (lambda: nsq.Publisher("t", "127.0.0.1:4150", mode="random"), ValueError),
    (lambda: nsq.Publisher("t", "127.0.0.1:4150", batch_size=0), ValueError),
    (lambda: nsq.Publisher("t", "127.0.0.1:4150", rate=0), ValueError),
    (lambda: nsq.Publisher("t", "127.0.0.1:4150", retry_timeout=-1), ValueError),
    (lambda: nsq.Publisher("t", "127.0.0.1:4150", no_such_option=1), TypeError),
], ids=["topic", "address", "no-address", "mode", "batch-size", "rate", "retry", "conn-kwarg"])
def test_bad_arguments_are_refused_when_the_publisher_is_made(make, error):
    with pytest.raises(error):
        make()


def test_bad_bodies_are_refused_before_anything_is_numbered(nsqd):
    async def main():
        async with nsq.Publisher("pub_api_types", nsqd.tcp_address) as publisher:
            with pytest.raises(TypeError, match="bytes or str, not int"):
                await publisher.publish([b"ok", 5])
            with pytest.raises(TypeError, match="publish_all"):
                await publisher.publish_all(b"not an iterable of bodies")
            return await publisher.publish(b"first")

    assert run(main()) == range(1, 2)
