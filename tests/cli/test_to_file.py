"""nsq-to-file end to end through the nsqd fixture (also valid against a real nsqd)."""

import os
import resource
import signal
import time
from collections import Counter

import pytest
from click.testing import CliRunner

from archive_samples import channel_counts, channel_drained, read_bodies, tool, wait_for
from nsqcli.archive.format import decode_jsonl
from nsqcli.to_file.command import to_file


def to_file_args(nsqd, topic, out, *extra):
    return ["--topic", topic, "--nsqd-tcp-address", nsqd.tcp_address, "--output-dir", str(out), *extra]


def stop(proc, sig=signal.SIGTERM, timeout=30):
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err.decode()


def test_archive_50000_with_rotation_gzip_and_work_dir(nsqd, tmp_path):
    n = 50_000
    bodies = [b"message-%06d" % i for i in range(n)]
    for start in range(0, n, 10_000):
        nsqd.mpub("big", bodies[start:start + 10_000])
    out, work = tmp_path / "out", tmp_path / "work"
    proc = tool("to_file", *to_file_args(nsqd, "big", out, "--work-dir", str(work), "--gzip",
                                         "--rotate-size", "150000", "--max-in-flight", "500"))
    try:
        wait_for(channel_drained(nsqd, "big", "nsq_to_file"), 60, what="the channel to drain")
    finally:
        rc, err = stop(proc)
    assert rc == 130, err  # stopped by SIGTERM after a clean drain
    assert os.listdir(work) == []  # every file moved to the output dir
    names = sorted(os.listdir(out))
    assert len(names) >= 3 and all(name.endswith(".log.gz") for name in names)
    assert all("-00000" in name for name in names)
    found = read_bodies(out)
    assert len(found) == n and set(found) == set(bodies)  # every message, exactly once here


def test_drained_channel_is_finished_promptly_despite_long_sync_interval(nsqd, tmp_path):
    nsqd.create_topic("prompt")
    nsqd.create_channel("prompt", "nsq_to_file")
    proc = tool("to_file", *to_file_args(nsqd, "prompt", tmp_path, "--sync-interval", "30s"))
    try:
        wait_for(lambda: (nsqd.channel_stats("prompt", "nsq_to_file") or {}).get("client_count"), 10)
        nsqd.mpub("prompt", [b"a", b"b", b"c"])
        start = time.monotonic()
        wait_for(lambda: channel_counts(nsqd, "prompt", "nsq_to_file")["finished"] == 3, 5,
                 interval=0.01, what="FIN of 3 messages")
        assert time.monotonic() - start < 1.0
        files = os.listdir(tmp_path)
        assert len(files) == 1 and (tmp_path / files[0]).read_bytes() == b"a\nb\nc\n"
    finally:
        stop(proc)


def test_kill_9_then_restart_loses_nothing(nsqd_factory, tmp_path):
    nsqd = nsqd_factory(msg_timeout_ms=1000)
    n = 20_000
    bodies = [b"k-%05d" % i for i in range(n)]
    nsqd.mpub("crash", bodies[: n // 2])
    out, work = tmp_path / "out", tmp_path / "work"
    args = to_file_args(nsqd, "crash", out, "--work-dir", str(work), "--gzip", "--max-in-flight", "300")
    first = tool("to_file", *args)
    wait_for(lambda: channel_counts(nsqd, "crash", "nsq_to_file")["finished"] > 2000, 30,
             what="some messages archived")
    nsqd.mpub("crash", bodies[n // 2:])
    wait_for(lambda: channel_counts(nsqd, "crash", "nsq_to_file")["finished"] > n // 2 + 1000, 30)
    first.kill()  # SIGKILL mid-stream: no sync, no close, no move
    first.communicate()
    left = channel_counts(nsqd, "crash", "nsq_to_file")
    assert left["depth"] + left["in_flight"] > 0  # it really died with work left
    second = tool("to_file", *args)
    try:
        wait_for(channel_drained(nsqd, "crash", "nsq_to_file"), 60, what="redelivery and drain")
    finally:
        rc, err = stop(second)
    assert rc == 130, err
    found = Counter(read_bodies(out, work))  # the killed run's file stays in the work dir
    missing = [b for b in bodies if b not in found]
    assert not missing, f"{len(missing)} messages lost, e.g. {missing[:3]}"


def test_write_error_exits_non_zero_and_messages_are_redelivered(nsqd, tmp_path):
    n = 3000
    bodies = [b"w-%04d-" % i + b"x" * 50 for i in range(n)]
    nsqd.mpub("full", bodies)

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))

    proc = tool("to_file", *to_file_args(nsqd, "full", tmp_path / "a", "--max-in-flight", "100"),
                preexec_fn=small_files)
    _, err = proc.communicate(timeout=30)
    err = err.decode()
    assert proc.returncode == 1, err
    assert "nsq-to-file: error: [full/nsq_to_file] writing to" in err and "File too large" in err
    assert "Traceback" not in err
    archived = set(read_bodies(tmp_path / "a")) & set(bodies)  # the last record may be cut short
    assert 0 < len(archived) < n
    # nothing unsynced was finished: what is not on disk is back in the queue at once (REQ 0)
    wait_for(lambda: channel_counts(nsqd, "full", "nsq_to_file")["in_flight"] == 0, 10)
    depth = channel_counts(nsqd, "full", "nsq_to_file")["depth"]
    assert depth >= n - len(archived)
    second = tool("to_file", *to_file_args(nsqd, "full", tmp_path / "b"))
    try:
        wait_for(channel_drained(nsqd, "full", "nsq_to_file"), 30)
    finally:
        stop(second)
    assert set(archived) | set(read_bodies(tmp_path / "b")) == set(bodies)


def test_sighup_closes_and_moves_files_then_reopens(nsqd, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    proc = tool("to_file", *to_file_args(nsqd, "hup", out, "--work-dir", str(work)))
    try:
        wait_for(lambda: nsqd.channel_stats("hup", "nsq_to_file"), 10)
        nsqd.pub("hup", b"one")
        wait_for(lambda: os.listdir(work) if os.path.isdir(work) else None, 10)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: os.path.isdir(out) and len(os.listdir(out)) == 1, 10, what="moved file")
        assert os.listdir(work) == []
        nsqd.pub("hup", b"two")
        wait_for(lambda: os.listdir(work), 10, what="a new file after SIGHUP")
    finally:
        rc, err = stop(proc)
    assert rc == 130, err
    names = sorted(os.listdir(out))
    assert len(names) == 2 and names[0].split(".")[1].endswith("-000000")
    assert sorted(read_bodies(out)) == [b"one", b"two"]


def test_jsonl_format_is_lossless(nsqd, tmp_path):
    bodies = [b"line\nbreak", b"\x00\xff binary", "ünïcode".encode(), b'{"json": true}']
    nsqd.mpub("lossless", bodies)
    proc = tool("to_file", *to_file_args(nsqd, "lossless", tmp_path, "--format", "jsonl"))
    try:
        wait_for(channel_drained(nsqd, "lossless", "nsq_to_file"), 20)
    finally:
        stop(proc)
    (name,) = os.listdir(tmp_path)
    records = [decode_jsonl(line) for line in (tmp_path / name).read_bytes().splitlines()]
    assert [r.body for r in records] == bodies
    assert all(r.topic == "lossless" and len(r.id) == 16 and r.attempts == 1 for r in records)
    assert all(abs(r.timestamp / 1e9 - time.time()) < 60 for r in records)


def test_topic_discovery_with_pattern(nsqd_with_lookupd, tmp_path):
    nsqd, lookupd = nsqd_with_lookupd
    for topic in ("logs_a", "logs_b", "metrics"):
        nsqd.create_topic(topic)
    wait_for(lambda: {"logs_a", "logs_b", "metrics"} <= set(lookupd.topics()), 10)
    proc = tool("to_file", "--lookupd-http-address", lookupd.http_address, "--topic-pattern",
                "^logs_", "--output-dir", str(tmp_path), "--topic-refresh", "200ms")
    try:
        for topic in ("logs_a", "logs_b", "metrics"):
            nsqd.pub(topic, topic.encode())
        nsqd.create_topic("logs_c")
        nsqd.pub("logs_c", b"late topic")
        wait_for(lambda: len(os.listdir(tmp_path)) == 3 and sorted(read_bodies(tmp_path)) == [
            b"late topic", b"logs_a", b"logs_b"], 20, what="three topics archived")
    finally:
        stop(proc)
    assert not any(name.startswith("metrics") for name in os.listdir(tmp_path))


@pytest.mark.parametrize("args,message", [
    (["--topic", "t", "--gzip", "--filename-format", "<TOPIC>.log"], "missing <REV> in --filename-format"),
    (["--topic", "t", "--gzip-level", "0"], "invalid --gzip-level value (0), should be 1-9"),
    ([], "use --topic to list at least one topic"),
    (["--topic", "t", "--topic-pattern", "("], "invalid --topic-pattern"),
    (["--topic", "bad topic"], "Invalid value for '--topic': invalid topic name 'bad topic': use "
                               "1-64 characters of [.a-zA-Z0-9_-]"),
    (["--topic", "t", "--channel", ""], "--channel is required"),
    (["--topic", "t", "--max-in-flight", "0"], "--max-in-flight must be >= 1"),
])
def test_usage_errors(args, message):
    result = CliRunner().invoke(to_file, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_unusable_output_dir_exits_1_and_leaves_the_message(nsqd, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    nsqd.pub("nowhere", b"keep me")
    rc_proc = tool("to_file", *to_file_args(nsqd, "nowhere", blocker / "sub"))
    _, err = rc_proc.communicate(timeout=30)
    err = err.decode()
    assert rc_proc.returncode == 1, err
    assert err == (f"nsq-to-file: error: --output-dir: cannot create the directory "
                   f"{blocker / 'sub'}: {blocker} is a file, not a directory\n")
    # checked at start: nothing was consumed
    assert nsqd.channel_stats("nowhere", "nsq_to_file") is None
    assert nsqd.topic_stats("nowhere")["depth"] == 1


def test_timed_rotation_and_skip_empty_files(nsqd, tmp_path):
    out = tmp_path / "out"
    proc = tool("to_file", *to_file_args(nsqd, "timed_rot", out, "--rotate-interval", "300ms",
                                         "--sync-interval", "100ms", "--skip-empty-files"))
    try:
        wait_for(lambda: nsqd.channel_stats("timed_rot", "nsq_to_file"), 10)
        nsqd.pub("timed_rot", b"first")
        wait_for(lambda: os.path.isdir(out) and os.listdir(out), 10)
        time.sleep(0.8)  # several timed rotations: the file closes, no empty file follows
        assert len(os.listdir(out)) == 1
        nsqd.pub("timed_rot", b"second")
        wait_for(lambda: len(os.listdir(out)) == 2, 10, what="a new file for the next message")
    finally:
        rc, err = stop(proc)
    assert rc == 130, err
    names = sorted(os.listdir(out))
    assert [n.split(".")[1][-7:] for n in names] == ["-000000", "-000001"]
    assert sorted(read_bodies(out)) == [b"first", b"second"]
