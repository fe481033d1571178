"""Helpers building archives byte for byte as the Go nsq_to_file writes them (for tests)."""

import struct
import zlib


def go_gzip_member(data: bytes, level: int = 6) -> bytes:
    """One gzip member as Go's compress/gzip writes it: no name, mtime 0, XFL 0, OS 255."""
    header = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = c.compress(data) + c.flush()
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def go_archive(batches: list[list[bytes]]) -> bytes:
    """A Go nsq_to_file --gzip file: one member per sync, plus the empty member its Close adds."""
    members = [go_gzip_member(b"".join(body + b"\n" for body in batch)) for batch in batches]
    return b"".join(members) + go_gzip_member(b"")


# -- driving the tools as subprocesses -------------------------------------------------------

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402


def tool(module: str, *args: str, **popen) -> subprocess.Popen:
    """Start ``python -m nsqcli.<module> args...`` with stdout/stderr piped."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-m", f"nsqcli.{module}", *args], **popen)


def wait_for(condition, timeout: float = 20.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def archive_files(*dirs) -> list[str]:
    return sorted(os.path.join(root, name) for d in dirs if os.path.isdir(d)
                  for root, _, names in os.walk(d) for name in names)


def read_bodies(*dirs) -> list[bytes]:
    """Every record body in every file under ``dirs`` (gzip or not, raw or jsonl)."""
    from nsqcli.archive.reader import ArchiveReader

    bodies: list[bytes] = []
    for path in archive_files(*dirs):
        with ArchiveReader(path) as reader:
            for chunk in reader.chunks():
                bodies.extend(chunk.bodies)
    return bodies


def channel_counts(nsqd, topic: str, channel: str) -> dict:
    stats = nsqd.channel_stats(topic, channel) or {}
    clients = stats.get("clients") or []
    return {
        "depth": stats.get("depth", 0),
        "in_flight": stats.get("in_flight_count", 0),
        "finished": sum(c.get("finish_count", 0) for c in clients),
        "message_count": stats.get("message_count", 0),
    }


def channel_drained(nsqd, topic: str, channel: str):
    """A wait_for predicate: every message published to ``topic`` reached ``channel`` and was
    FINed (see channels.ChannelSettled; the channel may not exist yet)."""
    from channels import ChannelSettled

    return ChannelSettled(nsqd, topic, channel, expected=0)


def tail_json(nsqd, topic: str, n: int, timeout: float = 30) -> list[dict]:
    """Consume ``n`` messages of ``topic`` with ``nsq-tail --format json`` (a fresh channel)."""
    import json

    proc = tool("tail", "--topic", topic, "--nsqd-tcp-address", nsqd.tcp_address, "-n", str(n),
                "--format", "json")
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()
    return [json.loads(line) for line in out.splitlines()]


def json_body(record: dict) -> bytes:
    import base64

    return record["body"].encode() if "body" in record else base64.b64decode(record["body_base64"])


def run_tool(module: str, *args: str, timeout: float = 60, **popen):
    proc = tool(module, *args, **popen)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
