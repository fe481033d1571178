"""Short runs through a proxy that resets connections at random (the soak test's fault
injector, a few seconds each): nsq-to-file, nsq-replay and the Writer keep at-least-once."""

from __future__ import annotations

import asyncio
import gzip
import signal
import subprocess

from polling import until

from fault_helpers import (
    ChaosProxy, consume_channel, kill_quietly, lines_of, settled_depth, spawn, stop_with, tool,
    wait_for,
)

from nsqcli.lib.protocol.errors import Error
from nsqcli.lib.writer import Writer


def test_nsq_to_file_through_random_resets_archives_everything(nsqd_factory, tmp_path):
    nsqd = nsqd_factory(msg_timeout_ms=1000)
    nsqd.create_topic("ct")
    nsqd.create_channel("ct", "c")
    everything = [b"ct-%d" % i for i in range(30_000)]
    for start in range(0, len(everything), 5000):
        nsqd.mpub("ct", everything[start:start + 5000])
    out_dir = tmp_path / "out"
    with ChaosProxy(nsqd.tcp_address, seed=3) as proxy:
        proxy.start_chaos(0.05, 0.3)
        # nsqd holds message frames up to output_buffer_timeout (250 ms by default) before it
        # writes them: connections cut every 50-300 ms would seldom live to get the last few
        # hundred messages, so the tool asks for nsqd's shortest buffering (25 ms)
        process = spawn([tool("nsq-to-file"), "--topic", "ct", "--channel", "c", "--output-dir",
                         str(out_dir), "--max-in-flight", "500",
                         "--consumer-opt", "output_buffer_timeout=25ms",
                         "--consumer-opt", "reconnect_interval=50ms",
                         "--consumer-opt", "max_reconnect_interval=300ms",
                         "--nsqd-tcp-address", proxy.address], stderr=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: proxy.faults >= 5, timeout=20)
            # everything FINed (so archived first); a message whose FIN a reset lost is in
            # flight until nsqd's timeout, then queued again, so a settled 0 means all done
            settled_depth(nsqd, "ct", "c", timeout=30, expected=0)
            proxy.stop_chaos()
            faults = proxy.faults
            elapsed, _ = stop_with(process, signal.SIGTERM)
        finally:
            kill_quietly(process)
    assert process.returncode == 130
    archived = [line for path in out_dir.iterdir() for line in lines_of(path)]
    assert set(archived) == set(everything), faults  # at least once: duplicates allowed
    assert faults >= 5


def test_nsq_replay_through_random_resets_acknowledges_everything(nsqd, tmp_path):
    total = 60_000
    source = tmp_path / "cr.h-000000.2024-01-01_00.log.gz"
    source.write_bytes(gzip.compress(b"".join(b"cr-%d\n" % i for i in range(total))))
    nsqd.create_topic("cr")
    nsqd.create_channel("cr", "c")
    with ChaosProxy(nsqd.tcp_address, seed=4) as proxy:
        process = spawn([tool("nsq-replay"), "-v", str(source), "--rate", "50000",
                         "--nsqd-tcp-address", proxy.address])
        try:
            # once it published (a publisher that cannot make its first connection exits 1,
            # as for an unreachable nsqd: a reset during that handshake is not this test's)
            assert wait_for(lambda: nsqd.channel_stats("cr", "c")["message_count"] > 0)
            proxy.start_chaos(0.02, 0.1)
            _, stderr = process.communicate(timeout=60)
        finally:
            kill_quietly(process)
        faults = proxy.faults
    assert process.returncode == 0, stderr
    assert f"{total} of {total} records acknowledged".encode() in stderr, stderr
    assert faults >= 3 and stderr.count(b"reconnected") >= 3, (faults, stderr)
    assert set(consume_channel(nsqd, "cr")) == {b"cr-%d" % i for i in range(total)}


def test_writer_through_random_resets_reports_every_publish(nsqd):
    nsqd.create_topic("cw")
    nsqd.create_channel("cw", "c")
    bodies = [b"cw-%d" % i for i in range(10_000)]
    cut_at = {5, 20, 35}  # batches whose publishes are caught by a reset, whatever the timing

    async def main(proxy: ChaosProxy) -> tuple[int, int]:
        writer = Writer([proxy.address], reconnect_interval=0.2, connect_timeout=10)
        pending, failures, rounds, batches = list(bodies), 0, 0, 0
        while pending:
            rounds += 1
            results = []
            for start in range(0, len(pending), 200):  # a steady stream, 200 at a time
                batch = pending[start:start + 200]
                batches += 1
                if batches in cut_at:
                    proxy.swallow_answers()  # nsqd publishes them, its answers never arrive
                publishes = asyncio.gather(*(writer.pub("cw", b) for b in batch),
                                           return_exceptions=True)
                if batches in cut_at:
                    await until(lambda: proxy.swallowed or publishes.done())
                    proxy.cut_all()
                results += await publishes
            assert all(r == b"OK" or isinstance(r, Error) for r in results), \
                [r for r in results if r != b"OK"][:3]
            pending = [b for b, r in zip(pending, results) if r != b"OK"]
            failures += len(pending)
        await writer.close()
        return failures, rounds

    with ChaosProxy(nsqd.tcp_address, seed=5) as proxy:
        proxy.start_chaos(0.02, 0.1)
        failures, rounds = asyncio.run(asyncio.wait_for(main(proxy), 60))
        faults = proxy.faults
    assert faults >= len(cut_at) and failures > 0 and rounds >= 2, (faults, failures, rounds)
    assert set(consume_channel(nsqd, "cw")) == set(bodies)
