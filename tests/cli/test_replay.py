"""nsq-replay end to end through the nsqd fixture (also valid against a real nsqd)."""

import gzip
import json
import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from archive_samples import (
    channel_drained, go_archive, json_body, run_tool, tail_json, tool, wait_for,
)
from nsqcli.archive.format import encode_jsonl

BINARY = [b"\x00\x01\xfe\xff", b"caf\xc3\xa9", b"\xff" * 10, b"tab\there", b'{"k": [1, 2]}']
NEWLINES = [b"first\nsecond", b"\n\nmiddle\n"]


def archive_with_to_file(nsqd, topic, bodies, out, *extra):
    nsqd.mpub(topic, bodies)
    proc = tool("to_file", "--topic", topic, "--nsqd-tcp-address", nsqd.tcp_address,
                "--output-dir", str(out), *extra)
    try:
        wait_for(channel_drained(nsqd, topic, "nsq_to_file"), 30, what=f"{topic} archived")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    return sorted(os.path.join(out, name) for name in os.listdir(out))


def topic_count(nsqd, topic):
    stats = nsqd.topic_stats(topic)
    return stats["message_count"] if stats else 0


def test_jsonl_round_trip_is_exact(nsqd, tmp_path):
    bodies = BINARY + NEWLINES + [b"plain %d" % i for i in range(200)]
    files = archive_with_to_file(nsqd, "src_jsonl", bodies, tmp_path / "a", "--format", "jsonl",
                                 "--gzip")
    rc, out, err = run_tool("replay", *files, "--nsqd-tcp-address", nsqd.tcp_address,
                            "--rename", "src_jsonl=dst_jsonl", "-v")
    assert rc == 0, err
    assert f"{len(bodies)} of {len(bodies)} records acknowledged" in err
    received = tail_json(nsqd, "dst_jsonl", len(bodies))
    assert Counter(json_body(r) for r in received) == Counter(bodies)  # byte-exact, each once
    assert topic_count(nsqd, "src_jsonl") == len(bodies)  # nothing went back to the source


def test_raw_round_trip_like_go(nsqd, tmp_path):
    bodies = BINARY + [b"line %d" % i for i in range(100)]
    files = archive_with_to_file(nsqd, "src_raw", bodies + NEWLINES, tmp_path / "a")
    assert files[0].endswith(".log") and os.path.basename(files[0]).startswith("src_raw.")
    rc, _, err = run_tool("replay", *files, "--nsqd-tcp-address", nsqd.tcp_address,
                          "--topic", "dst_raw")
    assert rc == 0, err
    # raw is the Go format: a body holding newlines comes back as several records
    expected = bodies + [b"first", b"second", b"middle"]
    received = tail_json(nsqd, "dst_raw", len(expected))
    assert Counter(json_body(r) for r in received) == Counter(expected)


def test_go_format_archive_replays_with_topic_from_file_name(nsqd, tmp_path):
    go_file = tmp_path / "orders.macbook-pro-000001.2020-06-30_18.log.gz"
    batches = [[b"order-%d" % i for i in range(j, j + 50)] for j in range(0, 200, 50)]
    go_file.write_bytes(go_archive(batches))
    rc, _, err = run_tool("replay", str(go_file), "--nsqd-tcp-address", nsqd.tcp_address)
    assert rc == 0, err
    received = tail_json(nsqd, "orders", 200)
    assert sorted(json_body(r) for r in received) == sorted(b for batch in batches for b in batch)


def test_files_replay_in_name_order_and_stdin(nsqd, tmp_path):
    names = ["t.h-000001.2024-01-01_00.log", "t.h-000000.2024-01-01_01.log",
             "t.h-000000.2024-01-01_00.log"]
    for name in names:
        (tmp_path / name).write_bytes(name.encode() + b"\n")
    rc, _, err = run_tool("replay", str(tmp_path / "*.log"), "--nsqd-tcp-address",
                          nsqd.tcp_address, "--batch-size", "1")
    assert rc == 0, err
    got = [json_body(r).decode() for r in tail_json(nsqd, "t", 3)]
    assert got == ["t.h-000000.2024-01-01_00.log", "t.h-000001.2024-01-01_00.log",
                   "t.h-000000.2024-01-01_01.log"]
    piped = gzip.compress(b"".join(encode_jsonl("from_stdin", b"0" * 16, 1, 1, b) for b in NEWLINES))
    with open(_write(tmp_path / "in.gz", piped), "rb") as stdin:
        rc, _, err = run_tool("replay", "--nsqd-tcp-address", nsqd.tcp_address, "-", stdin=stdin)
    assert rc == 0, err
    assert sorted(json_body(r) for r in tail_json(nsqd, "from_stdin", 2)) == sorted(NEWLINES)


def _write(path, data):
    path.write_bytes(data)
    return path


def test_checkpoint_resume_sends_nothing_twice(nsqd, tmp_path):
    n = 3000
    src = tmp_path / "resume.h-000000.2024-01-01_00.log.gz"
    src.write_bytes(gzip.compress(b"".join(b"r-%05d\n" % i for i in range(n))))
    checkpoint = tmp_path / "ck.json"
    args = [str(src), "--nsqd-tcp-address", nsqd.tcp_address, "--checkpoint", str(checkpoint),
            "--batch-size", "50"]
    first = tool("replay", *args, "--rate", "4000")
    wait_for(lambda: 300 < topic_count(nsqd, "resume"), 20, what="part of the replay")
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=30)
    assert first.returncode == 130, err.decode()
    sent = topic_count(nsqd, "resume")
    assert 300 < sent < n
    saved = json.loads(Path(checkpoint).read_text())
    (entry,) = saved["files"].values()
    assert entry["acked"] == [[0, sent]] and entry["complete"] is False
    rc, _, err = run_tool("replay", *args, "-v")
    assert rc == 0, err
    assert f"{n - sent} of {n - sent} records acknowledged ({sent} already acknowledged" in err
    assert topic_count(nsqd, "resume") == n  # exactly n: nothing was sent twice
    received = tail_json(nsqd, "resume", n)
    assert sorted(json_body(r) for r in received) == [b"r-%05d" % i for i in range(n)]
    assert json.loads(Path(checkpoint).read_text())["files"][str(src.resolve())]["complete"] is True
    rc, _, err = run_tool("replay", *args, "-v")  # a third run: the file is done
    assert rc == 0 and "already replayed (checkpoint)" in err
    assert topic_count(nsqd, "resume") == n


def test_timing_original_keeps_scaled_gaps(nsqd, tmp_path):
    gaps_ms = [0, 400, 500, 900, 1300]
    base = 1_700_000_000_000_000_000
    lines = b"".join(encode_jsonl("timed", b"%016d" % i, base + g * 1_000_000, 1, b"t%d" % i)
                     for i, g in enumerate(gaps_ms))
    (tmp_path / "in.jsonl").write_bytes(lines)
    out = tmp_path / "capture"
    capture = tool("to_file", "--topic", "timed", "--nsqd-tcp-address", nsqd.tcp_address,
                   "--output-dir", str(out), "--format", "jsonl")
    try:
        wait_for(lambda: (nsqd.channel_stats("timed", "nsq_to_file") or {}).get("client_count"), 10)
        rc, _, err = run_tool("replay", str(tmp_path / "in.jsonl"), "--nsqd-tcp-address",
                              nsqd.tcp_address, "--timing", "original", "--speed", "2")
        assert rc == 0, err
        wait_for(channel_drained(nsqd, "timed", "nsq_to_file"), 10)
    finally:
        capture.send_signal(signal.SIGTERM)
        capture.communicate(timeout=20)
    from nsqcli.archive.reader import ArchiveReader

    (path,) = [os.path.join(out, f) for f in os.listdir(out)]
    with ArchiveReader(path) as reader:
        records = [r for chunk in reader.chunks() for r in chunk.records]
    stamps = {r.body: r.timestamp for r in records}  # nsqd's publish times
    got = [(stamps[b"t%d" % i] - stamps[b"t0"]) / 1e6 for i in range(len(gaps_ms))]
    for want, seen in zip([g / 2 for g in gaps_ms], got):
        assert abs(seen - want) < 100, (got, gaps_ms)  # speed 1 would be 200+ ms off


def test_since_until_filter_jsonl(nsqd, tmp_path):
    base = 1_700_000_000
    lines = b"".join(encode_jsonl("when", b"%016d" % i, (base + i) * 1_000_000_000, 1, b"s%d" % i)
                     for i in range(10))
    (tmp_path / "w.jsonl").write_bytes(lines)
    rc, out, err = run_tool("replay", str(tmp_path / "w.jsonl"), "--dry-run", "--since",
                            str(base + 3), "--until", "2023-11-14T22:13:27Z")
    assert rc == 0, err
    assert "when: 4" in out and "outside --since/--until: 6" in out  # s3..s6
    rc, _, err = run_tool("replay", str(tmp_path / "w.jsonl"), "--nsqd-tcp-address",
                          nsqd.tcp_address, "--since", str(base + 3), "--until", str(base + 7))
    assert rc == 0, err
    assert sorted(json_body(r) for r in tail_json(nsqd, "when", 4)) == [b"s3", b"s4", b"s5", b"s6"]


def test_dry_run_counts_and_publishes_nothing(nsqd, tmp_path):
    (tmp_path / "a.h-000000.2024-01-01_00.log").write_bytes(b"1\n2\n\n3\n")
    (tmp_path / "x.jsonl").write_bytes(encode_jsonl("b", b"0" * 16, 1, 1, b"z"))
    rc, out, err = run_tool("replay", str(tmp_path), "--dry-run", "--nsqd-tcp-address",
                            nsqd.tcp_address)
    assert rc == 0, err
    assert "dry run: 2 file(s), 4 record(s) read, 4 to publish" in out
    assert "  a: 3" in out and "  b: 1" in out
    assert nsqd.topic_stats("a") is None and nsqd.topic_stats("b") is None


def test_bad_record_names_file_and_line_or_is_skipped(nsqd, tmp_path):
    good = encode_jsonl("bad_input", b"0" * 16, 1, 1, b"ok")
    path = tmp_path / "x.jsonl"
    path.write_bytes(good + b'{"body": 1}\n' + good)
    rc, _, err = run_tool("replay", str(path), "--nsqd-tcp-address", nsqd.tcp_address)
    assert rc == 1
    assert f"nsq-replay: error: {path}:2: 'body' must be a string" in err
    rc, _, err = run_tool("replay", str(path), "--nsqd-tcp-address", nsqd.tcp_address,
                          "--skip-bad", "-v")
    assert rc == 0, err
    assert f"skipped bad record {path}:2" in err and "1 bad record(s) skipped" in err


def test_unknown_topic_is_a_usage_error(nsqd, tmp_path):
    path = tmp_path / "random-name.txt"
    path.write_bytes(b"x\n")
    rc, _, err = run_tool("replay", str(path), "--nsqd-tcp-address", nsqd.tcp_address)
    assert rc == 2 and "cannot tell the topic of the records in" in err and "give --topic" in err


@pytest.mark.parametrize("args,message", [
    (["--speed", "2", "x"], "--speed needs --timing original"),
    (["--rename", "nope", "x"], "expected OLD=NEW"),
    (["--topic", "t", "--rename", "a=b", "x"], "no effect with --topic"),
    (["--since", "yesterday", "x"], "invalid --since"),
    (["--since", "20", "--until", "10", "x"], "--until must be later than --since"),
    (["/does/not/exist"], "no such file"),
])
def test_usage_errors(args, message, tmp_path):
    rc, _, err = run_tool("replay", *[str(tmp_path / a) if a == "x" else a for a in args],
                          cwd=tmp_path)
    assert rc == 2, err
    assert message in err


def test_raw_with_timing_is_refused(nsqd, tmp_path):
    (tmp_path / "t.h-000000.2024-01-01_00.log").write_bytes(b"a\n")
    rc, _, err = run_tool("replay", str(tmp_path), "--nsqd-tcp-address", nsqd.tcp_address,
                          "--timing", "original")
    assert rc == 2 and "need jsonl records" in err


def test_defer_publishes_deferred(nsqd, tmp_path):
    (tmp_path / "later.h-000000.2024-01-01_00.log").write_bytes(b"a\nb\n")
    nsqd.create_topic("later")
    nsqd.create_channel("later", "c")
    rc, _, err = run_tool("replay", str(tmp_path), "--nsqd-tcp-address", nsqd.tcp_address,
                          "--defer", "1m")
    assert rc == 0, err
    assert nsqd.channel_stats("later", "c")["deferred_count"] == 2


def test_nsqd_gone_exits_3_with_unacknowledged_count(nsqd, tmp_path):
    n = 5000
    src = tmp_path / "gone.h-000000.2024-01-01_00.log"
    src.write_bytes(b"".join(b"g-%05d\n" % i for i in range(n)))
    proc = tool("replay", str(src), "--nsqd-tcp-address", nsqd.tcp_address, "--rate", "3000",
                "--retry-timeout", "500ms", "--checkpoint", str(tmp_path / "ck"))
    wait_for(lambda: topic_count(nsqd, "gone") > 200, 20)
    nsqd.stop()
    _, err = proc.communicate(timeout=30)
    err = err.decode()
    assert proc.returncode == 3, err
    assert "records were not acknowledged by nsqd; rerun with the same --checkpoint" in err
    nsqd.start()
    rc, _, err = run_tool("replay", str(src), "--nsqd-tcp-address", nsqd.tcp_address,
                          "--checkpoint", str(tmp_path / "ck"))
    assert rc == 0, err


def test_progress_bar_on_request(nsqd, tmp_path):
    src = tmp_path / "prog.h-000000.2024-01-01_00.log.gz"
    src.write_bytes(gzip.compress(b"".join(b"p-%04d\n" % i for i in range(2000))))
    rc, _, err = run_tool("replay", str(src), "--nsqd-tcp-address", nsqd.tcp_address, "--progress")
    assert rc == 0, err
    assert "replay" in err and "2,000 records" in err


def test_umbrella_commands(tmp_path):
    rc, out, err = run_tool("__main__", "replay", "--help")
    assert rc == 0 and "--checkpoint" in out
    rc, out, err = run_tool("__main__", "to-file", "--help")
    assert rc == 0 and "--rotate-interval" in out


def test_jsonl_records_go_to_their_own_topics_via_lookupd(nsqd_with_lookupd, tmp_path):
    nsqd, lookupd = nsqd_with_lookupd
    lines = b"".join(encode_jsonl(topic, b"%016d" % i, i, 1, b"%s-%d" % (topic.encode(), i))
                     for i, topic in enumerate(["red", "blue", "blue", "red", "green"]))
    (tmp_path / "mixed.jsonl").write_bytes(lines)
    rc, _, err = run_tool("replay", str(tmp_path / "mixed.jsonl"), "--lookupd-http-address",
                          lookupd.http_address, "--rename", "green=red")
    assert rc == 0, err
    assert sorted(json_body(r) for r in tail_json(nsqd, "red", 3)) == [b"green-4", b"red-0", b"red-3"]
    assert sorted(json_body(r) for r in tail_json(nsqd, "blue", 2)) == [b"blue-1", b"blue-2"]
    assert nsqd.topic_stats("green") is None
