"""What the interop tests share: bodies that are hard to carry, running a process, archives."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
from pathlib import Path
from typing import Callable

from channels import ChannelSettled
from polling import wait_for

# Bytes a line-based tool must carry unchanged: a tab, a carriage return inside a line, NUL,
# bytes that are not UTF-8, non-ASCII text, a 20 KB line.
ODD_TAILS = [b"", b"\ttab", b" cr\r inside", b" nul\x00", b" \xff\xfe not utf-8",
             " ünïcödé ✓".encode(), b" " + b"x" * 20_000]


def odd_bodies(count: int, tag: str) -> list[bytes]:
    """``count`` distinct newline-free bodies, one in seven of them odd in each way above."""
    return [b"%s-%05d" % (tag.encode(), i) + ODD_TAILS[i % len(ODD_TAILS)] for i in range(count)]


def publish(nsqd, topic: str, bodies: list[bytes], per_call: int = 500) -> None:
    """/mpub in slices: nsqd refuses a body over its --max-body-size (5 MiB by default)."""
    for first in range(0, len(bodies), per_call):
        nsqd.mpub(topic, bodies[first:first + per_call])


def environment() -> dict[str, str]:
    """The test's environment without the variables our tools read addresses from."""
    env = dict(os.environ)
    for key in ("NSQD_TCP_ADDRESS", "NSQLOOKUPD_HTTP_ADDRESS", "NSQ_AUTH_SECRET"):
        env.pop(key, None)
    return env


def run(argv: list[str], stdin: bytes | None = None, timeout: float = 60) -> bytes:
    """Run to completion; fails the test unless it exits 0; returns stdout."""
    result = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout,
                            env=environment())
    assert result.returncode == 0, (argv[0], result.returncode, result.stderr[-2000:])
    return result.stdout


def start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=environment())


def stop(process: subprocess.Popen) -> bytes:
    """SIGTERM (a graceful stop for our tools and Go's), wait, return stderr; a stuck process is
    killed and fails the test."""
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"{process.args[0]} did not stop within 30 s of SIGTERM") from None
    return stderr


def drained(nsqd, topic: str, channel: str, count: int) -> Callable[[], bool]:
    """A wait_for predicate: all ``count`` messages of the channel were FINed (a consumer that
    FINs after fsync has written them all)."""
    settled = ChannelSettled(nsqd, topic, channel, expected=0)
    return lambda: (nsqd.channel_stats(topic, channel) or {}).get("message_count") == count \
        and settled()


def wait_drained(nsqd, topic: str, channel: str, count: int, process: subprocess.Popen) -> None:
    """Wait (generously) until the consumer ``process`` has FINed every message."""
    done = drained(nsqd, topic, channel, count)
    ok = wait_for(lambda: done() or process.poll() is not None, timeout=60)
    assert process.poll() is None, (process.args[0], process.returncode,
                                    process.stderr.read()[-2000:])
    assert ok, (topic, channel, nsqd.channel_stats(topic, channel))


def archive_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def archive_bytes(directory: Path) -> bytes:
    """Every archive file under ``directory`` in name order, gunzipped where it is gzip."""
    data = []
    for path in archive_files(directory):
        raw = path.read_bytes()
        data.append(gzip.decompress(raw) if path.suffix == ".gz" else raw)
    return b"".join(data)
