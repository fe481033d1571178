"""Archives: what Go's nsq_to_file writes, nsq-replay replays; our nsq-to-file --format raw
writes what nsq_to_file writes, line for line."""

from __future__ import annotations

import pytest

from interop_helpers import (
    archive_bytes, archive_files, odd_bodies, publish, run, start, stop, wait_drained,
)
from polling import tool

pytestmark = pytest.mark.real_only("Go's apps are found next to the real nsqd binary")

COUNT = 2000


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_go_nsq_to_file_archives_replay_with_nsq_replay(nsqd, go_app, tmp_path, gzip):
    nsq_to_file = go_app("nsq_to_file")
    bodies = odd_bodies(COUNT, "archive")
    archive = tmp_path / "go"
    nsqd.create_topic("interop_arc")
    nsqd.create_channel("interop_arc", "go")
    publish(nsqd, "interop_arc", bodies)
    # about 6 MB of records: rotated every 256 KiB into a couple of dozen files
    writer = start([nsq_to_file, "--topic", "interop_arc", "--channel", "go",
                    "--nsqd-tcp-address", nsqd.tcp_address, "--output-dir", str(archive),
                    "--rotate-size", str(256 * 1024), "--sync-interval", "1s"]
                   + (["--gzip"] if gzip else []))
    try:
        wait_drained(nsqd, "interop_arc", "go", COUNT, writer)
    finally:
        stderr = stop(writer)
    assert writer.returncode == 0, stderr[-2000:]
    files = archive_files(archive)
    assert len(files) >= 2, files  # rotation happened
    assert all(f.name.endswith(".log.gz" if gzip else ".log") for f in files), files
    assert sorted(archive_bytes(archive).split(b"\n")) == sorted(bodies + [b""])

    nsqd.create_topic("interop_replayed")
    nsqd.create_channel("interop_replayed", "c")
    run([tool("nsq-replay"), "--topic", "interop_replayed", "--nsqd-tcp-address",
         nsqd.tcp_address, *map(str, files)])
    assert nsqd.topic_stats("interop_replayed")["message_count"] == COUNT
    out = run([tool("nsq-tail"), "--topic", "interop_replayed", "--channel", "c", "-n",
               str(COUNT), "--nsqd-tcp-address", nsqd.tcp_address])
    assert sorted(out.split(b"\n")) == sorted(bodies + [b""])


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_nsq_to_file_raw_writes_what_go_nsq_to_file_writes(nsqd, go_app, tmp_path, gzip):
    nsq_to_file = go_app("nsq_to_file")
    # one body with a newline inside: raw archives split it in two, the Go tool's way
    bodies = odd_bodies(COUNT, "same") + [b"two\nlines"]
    nsqd.create_topic("interop_same")
    nsqd.create_channel("interop_same", "go")
    nsqd.create_channel("interop_same", "ours")
    publish(nsqd, "interop_same", bodies)
    common = ["--topic", "interop_same", "--nsqd-tcp-address", nsqd.tcp_address,
              "--sync-interval", "1s"] + (["--gzip"] if gzip else [])
    theirs = start([nsq_to_file, "--channel", "go", "--output-dir", str(tmp_path / "go"),
                    *common])
    ours = start([tool("nsq-to-file"), "--format", "raw", "--channel", "ours", "--output-dir",
                  str(tmp_path / "ours"), *common])
    try:
        wait_drained(nsqd, "interop_same", "go", len(bodies), theirs)
        wait_drained(nsqd, "interop_same", "ours", len(bodies), ours)
    finally:
        stderr = {"go": stop(theirs), "ours": stop(ours)}
    assert theirs.returncode == 0, stderr["go"][-2000:]
    assert ours.returncode in (0, 130), stderr["ours"][-2000:]  # 130: stopped by the signal
    go_lines = archive_bytes(tmp_path / "go").split(b"\n")
    our_lines = archive_bytes(tmp_path / "ours").split(b"\n")
    # one nsqd, one consumer per channel, nothing requeued: both get the publish order
    assert our_lines == go_lines
    assert go_lines == b"\n".join(bodies + [b""]).split(b"\n")
    suffix = ".log.gz" if gzip else ".log"
    assert all(f.name.endswith(suffix) for f in archive_files(tmp_path / "ours"))
