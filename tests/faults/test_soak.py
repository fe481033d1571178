"""Opt-in soak (``pytest tests/faults --run-soak``; ``NSQCLI_SOAK_N`` sets the count, default
1,000,000): nsq-pub publishes N records and nsq-tail consumes them on a durable channel, both
through a proxy that resets connections at random. Every record must arrive at least once;
prints messages, faults injected, duplicates and losses."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from fault_helpers import ChaosProxy, kill_quietly, spawn, stop_with, tool

SOAK_N = int(os.environ.get("NSQCLI_SOAK_N", "1000000"))


class OutputFollower:
    """Reads the lines appended to a file since the last call (the tail's stdout)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.seen: set[bytes] = set()
        self.lines = 0

    def poll(self) -> None:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        self.offset += len(data)
        data = self.partial + data
        complete, _, self.partial = data.rpartition(b"\n")
        if complete:
            lines = complete.split(b"\n")
            self.lines += len(lines)
            self.seen.update(lines)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_publish_and_consume_with_random_connection_resets(nsqd_factory, tmp_path):
    n = SOAK_N
    nsqd = nsqd_factory(msg_timeout_ms=3000)
    nsqd.create_topic("soak")
    nsqd.create_channel("soak", "c")
    source = tmp_path / "records"
    with open(source, "wb") as handle:
        for start in range(0, n, 100_000):
            stop = min(n, start + 100_000)
            handle.write(b"".join(b"soak-%07d\n" % i for i in range(start, stop)))
    out = tmp_path / "tail.out"
    started = time.monotonic()
    tail_log, pub_log = tmp_path / "tail.err", tmp_path / "pub.err"  # files: never a full pipe
    with ChaosProxy(nsqd.tcp_address, seed=8) as proxy, open(out, "wb") as tail_out, \
            open(tail_log, "wb") as tail_err, open(pub_log, "wb") as pub_err:
        proxy.start_chaos(0.05, 0.4)
        tail = spawn([tool("nsq-tail"), "-v", "--topic", "soak", "--channel", "c",
                      "--max-in-flight", "1000", "--consumer-opt", "reconnect_interval=50ms",
                      "--consumer-opt", "max_reconnect_interval=500ms",
                      "--nsqd-tcp-address", proxy.address], stdout=tail_out, stderr=tail_err)
        pub = spawn([tool("nsq-pub"), "-v", "--topic", "soak", "--retry-timeout", "120s",
                     "--nsqd-tcp-address", proxy.address, str(source)], stderr=pub_err)
        follower = OutputFollower(out)
        published_at = None
        try:
            while tail.poll() is None:
                time.sleep(0.5)
                follower.poll()
                if os.environ.get("NSQCLI_SOAK_DEBUG"):
                    channel = nsqd.channel_stats("soak", "c")
                    print(f"t={time.monotonic() - started:.0f}s seen={len(follower.seen)} "
                          f"lines={follower.lines} faults={proxy.faults} "
                          f"connections={proxy.connections} live={proxy.live} "
                          f"depth={channel['depth']} in_flight={channel['in_flight_count']}",
                          flush=True)
                if published_at is None and pub.poll() is not None:
                    published_at = time.monotonic()
                if published_at is not None and (
                        len(follower.seen) >= n or time.monotonic() - published_at > 60):
                    break  # all there, or redelivered long ago: what is missing is lost
            proxy.stop_chaos()
            faults, connections = proxy.faults, proxy.connections
            elapsed = time.monotonic() - started
            stop_with(tail, signal.SIGTERM, timeout=60)
        finally:
            kill_quietly(pub)
            kill_quietly(tail)
    tail_stderr, pub_stderr = tail_log.read_bytes(), pub_log.read_bytes()
    follower.poll()
    wanted = {b"soak-%07d" % i for i in range(n)}
    lost = len(wanted - follower.seen)
    stray = len(follower.seen - wanted)
    duplicates = follower.lines - len(follower.seen)
    acked = re.search(rb"(\d+) of (\d+) records acknowledged", pub_stderr)
    print(f"\nSOAK messages={n} faults_injected={faults} proxied_connections={connections} "
          f"consumed_lines={follower.lines} duplicates={duplicates} losses={lost} "
          f"stray={stray} pub_exit={pub.returncode} "
          f"pub_report={acked.group(0).decode() if acked else None} "
          f"tail_exit={tail.returncode} elapsed={elapsed:.1f}s")
    assert pub.returncode == 0, pub_stderr[-2000:]
    assert acked and int(acked.group(1)) == int(acked.group(2)) == n
    assert faults > 0
    assert lost == 0 and stray == 0
    assert tail.returncode == 130, tail_stderr[-2000:]
    assert b"Traceback" not in tail_stderr + pub_stderr
