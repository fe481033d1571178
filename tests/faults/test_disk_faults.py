"""Disk faults: nsq-to-file's output fills up (RLIMIT_FSIZE: writes fail with EFBIG) or its
output directory turns into a file; nsq-replay's input file vanishes. A one-line error naming the
file, a non-zero exit, no traceback, and nothing that was not safely written is FINed."""

from __future__ import annotations

import gzip
import resource
import shutil
import signal
import time

from fault_helpers import (
    CONSUMER_STOP_MSG_TIMEOUT_MS, consume_channel, kill_quietly, lines_of, queue_messages,
    settled_depth, spawn, tool, wait_for,
)


def _one_error_line(stderr: bytes) -> bytes:
    assert b"Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if b"error" in line]
    assert len(errors) == 1, stderr
    return errors[0]


def test_to_file_disk_full_exits_1_and_unsynced_messages_stay_queued(nsqd_factory, tmp_path):
    nsqd = nsqd_factory(msg_timeout_ms=CONSUMER_STOP_MSG_TIMEOUT_MS)
    everything = queue_messages(nsqd, "full", 20_000)
    out_dir = tmp_path / "out"
    limit = 64 * 1024  # about 4,500 records fit

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = spawn([tool("nsq-to-file"), "--topic", "full", "--channel", "c", "--output-dir",
                     str(out_dir), "--max-in-flight", "1000", "--nsqd-tcp-address",
                     nsqd.tcp_address], preexec_fn=small_disk)
    try:
        _, stderr = process.communicate(timeout=20)
    finally:
        kill_quietly(process)
    assert process.returncode == 1, stderr
    line = _one_error_line(stderr)
    assert b"File too large" in line and str(out_dir).encode() in line, line
    (archive,) = out_dir.iterdir()
    assert archive.stat().st_size <= limit
    data = archive.read_bytes()
    written = data[:data.rfind(b"\n") + 1].splitlines()  # a last line may be cut short
    assert written
    rest = consume_channel(nsqd, "full")
    assert set(written) | set(rest) == everything  # nothing FINed that is not on disk
    assert len(rest) >= len(everything) - len(written)


def test_to_file_output_dir_replaced_by_a_file_keeps_the_archive(nsqd, tmp_path):
    """The move from --work-dir to --output-dir fails (the output dir became a file): exit 1
    naming the file; the archive stays in the work dir, every message in it was FINed once."""
    everything = queue_messages(nsqd, "moved", 3000)
    work, out = tmp_path / "work", tmp_path / "out"
    process = spawn([tool("nsq-to-file"), "--topic", "moved", "--channel", "c", "--work-dir",
                     str(work), "--output-dir", str(out), "--nsqd-tcp-address",
                     nsqd.tcp_address])
    try:
        settled_depth(nsqd, "moved", "c", expected=0)  # everything archived and FINed
        shutil.rmtree(out, ignore_errors=True)
        out.write_bytes(b"not a directory")
        process.send_signal(signal.SIGHUP)  # close (and move) the current file
        _, stderr = process.communicate(timeout=20)
    finally:
        kill_quietly(process)
    assert process.returncode == 1, stderr
    line = _one_error_line(stderr)
    assert str(out).encode() in line, line
    (kept,) = work.iterdir()
    assert sorted(lines_of(kept)) == sorted(everything)


def test_replay_input_file_vanishes(nsqd, tmp_path):
    first = tmp_path / "a.h-000000.2024-01-01_00.log.gz"
    second = tmp_path / "b.h-000000.2024-01-01_01.log"
    first.write_bytes(gzip.compress(b"".join(b"a-%d\n" % i for i in range(20_000))))
    second.write_bytes(b"b-1\nb-2\n")
    nsqd.create_topic("gone")
    nsqd.create_channel("gone", "c")
    process = spawn([tool("nsq-replay"), "-v", str(first), str(second), "--topic", "gone",
                     "--rate", "40000", "--nsqd-tcp-address", nsqd.tcp_address])
    try:
        assert wait_for(lambda: nsqd.channel_stats("gone", "c")["depth"] > 0)
        second.unlink()
        _, stderr = process.communicate(timeout=30)
    finally:
        kill_quietly(process)
    assert process.returncode not in (0, 130) and process.returncode > 0, stderr
    line = _one_error_line(stderr)
    assert str(second).encode() in line and b"No such file" in line, line
    settled_depth(nsqd, "gone", "c", expected=20_000)  # the first file went out whole


def test_nsq_pub_failed_file_on_a_full_disk_still_reports_the_counts(nsqd, tmp_path):
    """nsqd goes away, and the --failed-file cannot hold the unacknowledged records: the
    counts are still reported, and the error says how many records the file does hold."""
    import subprocess

    nsqd.create_topic("ff")
    nsqd.create_channel("ff", "c")
    failed = tmp_path / "failed"
    limit = 1000

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = spawn([tool("nsq-pub"), "--topic", "ff", "--retry-timeout", "300ms",
                     "--failed-file", str(failed), "--nsqd-tcp-address", nsqd.tcp_address],
                    stdin=subprocess.PIPE, preexec_fn=small_disk)
    try:
        process.stdin.write(b"".join(b"a-%d\n" % i for i in range(1000)))
        process.stdin.flush()
        assert wait_for(lambda: nsqd.channel_stats("ff", "c")["depth"] == 1000)
        time.sleep(0.2)  # nsqd's answers reach nsq-pub
        nsqd.stop()
        _, stderr = process.communicate(b"".join(b"rec-%d\n" % i for i in range(2000)),
                                        timeout=20)
    finally:
        kill_quietly(process)
        nsqd.start()
    assert process.returncode == 1, stderr
    assert b"Traceback" not in stderr
    assert b"2000 of 3000 records were not acknowledged by nsqd\n" in stderr, stderr
    data = failed.read_bytes()
    kept = data.count(b"\n")
    assert 0 < kept < 2000 and len(data) == limit
    assert data[:data.rfind(b"\n") + 1] == b"".join(b"rec-%d\n" % i for i in range(kept))
    assert (f"cannot write --failed-file {failed}: File too large (only the first {kept} "
            "record(s) are in it)").encode() in stderr, stderr


def test_nsq_tail_stdout_on_a_full_disk_exits_1_and_loses_nothing(nsqd_factory, tmp_path):
    nsqd = nsqd_factory(msg_timeout_ms=CONSUMER_STOP_MSG_TIMEOUT_MS)
    everything = queue_messages(nsqd, "tfull", 20_000)
    out = tmp_path / "out"
    limit = 32 * 1024

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with open(out, "wb") as handle:
        process = spawn([tool("nsq-tail"), "--topic", "tfull", "--channel", "c",
                         "--nsqd-tcp-address", nsqd.tcp_address], stdout=handle,
                        preexec_fn=small_disk)
        try:
            _, stderr = process.communicate(timeout=20)
        finally:
            kill_quietly(process)
    assert process.returncode == 1, stderr
    assert _one_error_line(stderr) == b"nsq-tail: error: cannot write to stdout: File too large"
    data = out.read_bytes()
    printed = data[:data.rfind(b"\n") + 1].splitlines()
    rest = consume_channel(nsqd, "tfull")
    assert set(printed) | set(rest) == everything  # a failed write's messages were requeued
