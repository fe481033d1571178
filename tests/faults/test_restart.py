"""nsqd killed and restarted mid-stream (same ports): consumers reconnect with backoff and carry
on, producers resend or report every unacknowledged record, and a durable channel delivers every
published message at least once (checked by content)."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import subprocess
import time

from polling import until

from fault_helpers import (
    consume_channel, kill_quietly, lines_of, spawn, stop_with, tool, wait_for,
)

from nsqcli.lib.protocol.errors import Error
from nsqcli.lib.reader import Reader
from nsqcli.lib.writer import Writer

# in-flight messages whose FIN was lost in the restart come back after this
MSG_TIMEOUT_MS = 1000


async def _restart(nsqd, downtime: float) -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, nsqd.stop)
    await asyncio.sleep(downtime)
    await loop.run_in_executor(None, nsqd.start)


def test_reader_reconnects_with_jittered_backoff_and_consumes_everything(nsqd_factory, caplog):
    nsqd = nsqd_factory(msg_timeout_ms=MSG_TIMEOUT_MS)
    nsqd.create_topic("r")
    nsqd.create_channel("r", "c")
    before = [b"before-%d" % i for i in range(2000)]
    after = [b"after-%d" % i for i in range(2000)]
    nsqd.mpub("r", before)
    seen: list[bytes] = []
    caplog.set_level(logging.INFO, logger="nsqcli.lib.reader")

    async def slow_handler(message):
        await asyncio.sleep(0.001)  # keep messages in flight when nsqd goes away
        seen.append(message.body)
        return True

    async def main() -> int:
        reader = Reader("r", "c", slow_handler, nsqd_tcp_addresses=[nsqd.tcp_address],
                        max_in_flight=50, reconnect_interval=0.05, max_reconnect_interval=1.6)
        async with reader:
            await until(lambda: len(seen) >= 300, 10)
            await _restart(nsqd, downtime=0.9)
            await asyncio.get_running_loop().run_in_executor(None, nsqd.mpub, "r", after)
            await until(lambda: set(before + after) <= set(seen), 20)
            return len(reader.conns)

    assert asyncio.run(asyncio.wait_for(main(), 40)) == 1
    _assert_backoff_per_outage(caplog.text, first=0.05, cap=1.6)


def _assert_backoff_per_outage(log: str, first: float, cap: float) -> None:
    """The reconnect delays of each outage (one ends with 'connected again': nsqd answered a
    SUB) double from ``first`` up to ``cap``, each within +/-25 % jitter; the longest (nsqd
    down, connections refused) has several, not all the exact nominal values (no jitter).
    A real nsqd may drop a connection once more as it stops: a short outage of its own."""
    outages: list[list[float]] = [[]]
    for line in log.splitlines():
        delay = re.search(r"reconnecting in ([0-9.]+)s", line)
        if delay:
            outages[-1].append(float(delay.group(1)))
        elif "connected again" in line and outages[-1]:
            outages.append([])
    longest = max(outages, key=len)
    assert len(longest) >= 4, log  # refused while nsqd was down: several attempts
    for delays in outages:
        nominal = [min(first * 2 ** i, cap) for i in range(len(delays))]
        assert all(n * 0.75 - 0.006 <= d <= min(n * 1.25, cap) + 0.006
                   for d, n in zip(delays, nominal)), (outages, nominal)
    nominal = [min(first * 2 ** i, cap) for i in range(len(longest))]
    assert [round(n, 2) for n in nominal if n < cap] != [d for d, n in zip(longest, nominal)
                                                          if n < cap], longest


def test_writer_reports_each_publish_once_across_a_restart(nsqd_factory):
    """Every publish resolves exactly once: OK, or an error naming the lost connection. Publishes
    still unanswered when nsqd dies fail; those made while it is down wait for the reconnect.
    The caller resends what failed; a durable channel then has everything."""
    nsqd = nsqd_factory(msg_timeout_ms=MSG_TIMEOUT_MS)
    nsqd.create_topic("w")
    nsqd.create_channel("w", "c")
    bodies = [b"w-%d" % i for i in range(3000)]
    outcomes: dict[bytes, list] = {body: [] for body in bodies}

    def record(body):
        return lambda conn, data: outcomes[body].append(data)

    async def main() -> tuple[list, list]:
        writer = Writer([nsqd.tcp_address], reconnect_interval=0.3, connect_timeout=5)
        futures = [writer.pub("w", body, record(body)) for body in bodies[:1000]]
        await asyncio.gather(*futures)
        # a burst still unanswered (most not even written) when nsqd dies
        futures += [writer.pub("w", body, record(body)) for body in bodies[1000:2000]]
        nsqd.stop()  # blocks this loop: the burst meets a dead connection
        await asyncio.sleep(0.05)
        futures += [writer.pub("w", body, record(body)) for body in bodies[2000:]]  # while down
        await _restart(nsqd, downtime=0.3)
        results = await asyncio.gather(*futures, return_exceptions=True)
        failed = [b for b, r in zip(bodies, results) if isinstance(r, BaseException)]
        errors = [r for r in results if isinstance(r, BaseException)]
        for body in failed:  # the caller's resend after a reported failure
            await writer.pub("w", body)
        await writer.close()
        return failed, errors

    failed, errors = asyncio.run(asyncio.wait_for(main(), 40))
    assert all(isinstance(error, Error) for error in errors), errors[:3]
    assert 0 < len(failed) <= 1000  # only the burst in flight at the stop can fail
    assert set(failed) <= set(bodies[1000:2000])
    firsts = {body: reported[0] for body, reported in outcomes.items()}
    assert all(len(reported) == 1 for body, reported in outcomes.items() if body not in failed)
    assert {body for body, data in firsts.items() if data != b"OK"} == set(failed)
    assert all(isinstance(firsts[body], Error) for body in failed)
    assert set(consume_channel(nsqd, "w")) == set(bodies)


def test_nsq_pub_resends_across_a_restart_and_acknowledges_everything(nsqd_factory):
    nsqd = nsqd_factory(msg_timeout_ms=MSG_TIMEOUT_MS)
    nsqd.create_topic("p")
    nsqd.create_channel("p", "c")
    total = 60_000
    process = spawn([tool("nsq-pub"), "-v", "--topic", "p", "--retry-timeout", "15s",
                     "--nsqd-tcp-address", nsqd.tcp_address], stdin=subprocess.PIPE)
    try:
        process.stdin.write(b"".join(b"p-%d\n" % i for i in range(total // 2)))
        process.stdin.flush()
        nsqd.stop()
        time.sleep(0.5)
        nsqd.start()
        process.stdin.write(b"".join(b"p-%d\n" % i for i in range(total // 2, total)))
        process.stdin.close()
        process.wait(timeout=30)
        stderr = process.stderr.read()
    finally:
        kill_quietly(process)
    assert process.returncode == 0, stderr
    assert f"{total} of {total} records acknowledged".encode() in stderr, stderr
    assert b"Traceback" not in stderr
    bodies = consume_channel(nsqd, "p")
    assert set(bodies) == {b"p-%d" % i for i in range(total)}  # duplicates allowed, no loss


def test_nsq_pub_reports_exactly_what_was_not_acknowledged(nsqd, tmp_path):
    """nsqd stays down longer than --retry-timeout: exit 3, and the unacknowledged records are
    counted exactly and written to --failed-file (nothing acknowledged is listed there)."""
    nsqd.create_topic("x")
    nsqd.create_channel("x", "c")
    failed = tmp_path / "failed"
    process = spawn([tool("nsq-pub"), "-v", "--topic", "x", "--retry-timeout", "600ms",
                     "--failed-file", str(failed), "--nsqd-tcp-address", nsqd.tcp_address],
                    stdin=subprocess.PIPE)
    try:
        process.stdin.write(b"".join(b"x-%d\n" % i for i in range(20_000)))
        process.stdin.flush()
        assert wait_for(lambda: nsqd.channel_stats("x", "c")["depth"] > 0)
        nsqd.stop()
        process.stdin.write(b"".join(b"x-%d\n" % i for i in range(20_000, 25_000)))
        process.stdin.close()
        process.wait(timeout=30)
        stderr = process.stderr.read()
    finally:
        kill_quietly(process)
        nsqd.start()
    assert process.returncode == 3, stderr
    match = re.search(rb"(\d+) of 25000 records were not acknowledged", stderr)
    assert match, stderr
    not_acked = int(match.group(1))
    listed = failed.read_bytes().splitlines()
    assert len(listed) == not_acked >= 5000
    acked = re.search(rb"(\d+) of 25000 records acknowledged", stderr)
    assert acked and int(acked.group(1)) + not_acked == 25_000
    stored = set(consume_channel(nsqd, "x"))
    everything = {b"x-%d" % i for i in range(25_000)}
    assert stored | set(listed) == everything  # each record is stored or reported (or both)


def test_nsq_tail_carries_on_after_a_restart(nsqd_factory, tmp_path):
    nsqd = nsqd_factory(msg_timeout_ms=MSG_TIMEOUT_MS)
    nsqd.create_topic("t")
    nsqd.create_channel("t", "c")
    first = [b"t1-%d" % i for i in range(5000)]
    second = [b"t2-%d" % i for i in range(5000)]
    nsqd.mpub("t", first)
    out = tmp_path / "out"
    with open(out, "wb") as handle:
        process = spawn([tool("nsq-tail"), "-v", "--topic", "t", "--channel", "c",
                         "--max-in-flight", "20", "--consumer-opt", "reconnect_interval=50ms",
                         "--consumer-opt", "max_reconnect_interval=1600ms",
                         "--nsqd-tcp-address", nsqd.tcp_address], stdout=handle)
    try:
        assert wait_for(lambda: len(lines_of(out)) >= 500)
        nsqd.stop()
        time.sleep(0.9)
        nsqd.start()
        nsqd.mpub("t", second)
        assert wait_for(lambda: set(lines_of(out)) >= set(first + second), timeout=20), \
            len(set(lines_of(out)))
        assert process.poll() is None  # still running
        _, stderr = stop_with(process, signal.SIGTERM)
    finally:
        kill_quietly(process)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    _assert_backoff_per_outage(stderr.decode(), first=0.05, cap=1.6)


def test_reader_via_lookupd_reconnects_after_nsqd_restart(nsqd_with_lookupd):
    """The nsqd found through lookupd restarts: lookupd drops it, the Reader retires it, and
    reconnects once lookupd lists it again; nothing published before or after is missed."""
    nsqd, lookupd = nsqd_with_lookupd
    nsqd.create_topic("lr")
    nsqd.create_channel("lr", "c")
    lookupd.wait_for_producer(nsqd, topic="lr")
    before = [b"lb-%d" % i for i in range(1000)]
    after = [b"la-%d" % i for i in range(1000)]
    nsqd.mpub("lr", before)
    seen: list[bytes] = []

    async def main() -> None:
        reader = Reader("lr", "c", lambda m: seen.append(m.body) or True,
                        lookupd_http_addresses=[lookupd.http_address], lookupd_poll_interval=0.2,
                        lookupd_poll_jitter=0, max_in_flight=100, reconnect_interval=0.05,
                        max_reconnect_interval=0.4)
        loop = asyncio.get_running_loop()
        async with reader:
            await until(lambda: set(before) <= set(seen), 10)
            await _restart(nsqd, downtime=0.5)
            await loop.run_in_executor(None, lambda: lookupd.wait_for_producer(nsqd, topic="lr"))
            await loop.run_in_executor(None, nsqd.mpub, "lr", after)
            await until(lambda: set(after) <= set(seen), 15)
            assert list(reader.conns) == [nsqd.tcp_address]

    asyncio.run(asyncio.wait_for(main(), 30))
