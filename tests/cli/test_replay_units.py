"""Pure parts of nsq-replay: checkpoint ranges, inputs and order, topics, time filters, timing."""

import json
import os
import random
from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from nsqcli.replay.checkpoint import Checkpoint, CheckpointError, RangeSet, file_key
from nsqcli.replay.inputs import (
    InputError, TopicResolver, expand_inputs, parse_renames, parse_time, sort_files,
)
from nsqcli.replay.timing import OriginalTiming


@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 15)), max_size=30))
def test_rangeset_matches_a_plain_set(spans):
    ranges, plain = RangeSet(), set()
    for start, length in spans:
        ranges.add(start, start + length)
        plain.update(range(start, start + length))
    assert all((n in ranges) == (n in plain) for n in range(-1, 80))
    assert ranges.count() == len(plain)
    flat = ranges.ranges()
    assert all(a < b for a, b in flat)
    assert all(flat[i][1] < flat[i + 1][0] for i in range(len(flat) - 1))  # merged, sorted


def test_rangeset_numbers_overlaps_covers():
    r = RangeSet()
    r.add_numbers([0, 1, 2, 5, 6, 9])
    assert r.ranges() == [[0, 3], [5, 7], [9, 10]]
    assert r.overlaps(2, 5) and not r.overlaps(3, 5) and r.overlaps(4, 6)
    assert r.covers(5, 7) and not r.covers(4, 7) and not r.covers(9, 11)
    r.add(3, 5)
    assert r.ranges() == [[0, 7], [9, 10]]


def test_checkpoint_round_trip_atomic(tmp_path):
    path = str(tmp_path / "ck.json")
    ck = Checkpoint.load(path)
    key = file_key(str(tmp_path / "a.log"))
    ck.acknowledge(key, 1000, 2000)
    ck.acknowledge(key, 0, 1000)
    ck.acknowledge_numbers("-", [4, 5, 7])
    ck.mark_complete(key)
    ck.save()
    assert not any(name.startswith("ck.json.tmp") for name in os.listdir(tmp_path))
    data = json.load(open(path))
    assert data == {"version": 1, "files": {"-": {"acked": [[4, 6], [7, 8]], "complete": False},
                                            key: {"acked": [[0, 2000]], "complete": True}}}
    again = Checkpoint.load(path)
    assert again.is_complete(key) and 1999 in again.ranges(key) and 6 not in again.ranges("-")


def test_checkpoint_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(CheckpointError, match="bad.json is not a valid nsq-replay checkpoint"):
        Checkpoint.load(str(bad))
    bad.write_text('{"version": 99}')
    with pytest.raises(CheckpointError, match="unsupported checkpoint version 99"):
        Checkpoint.load(str(bad))
    ck = Checkpoint(str(tmp_path / "missing-dir" / "ck.json"))
    ck.acknowledge("x", 0, 1)
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        ck.save()


def test_expand_inputs(tmp_path):
    d = tmp_path / "arch"
    (d / "sub").mkdir(parents=True)
    for name in ["b.log", "a.log", ".hidden", "sub/c.log"]:
        (d / name).write_bytes(b"x\n")
    assert expand_inputs([]) == ["-"]
    files = expand_inputs([str(d)])
    assert [os.path.relpath(p, d) for p in files] == ["a.log", "b.log", "sub/c.log"]
    assert expand_inputs([str(d / "*.log")]) == [str(d / "a.log"), str(d / "b.log")]
    with pytest.raises(InputError, match="no file matches"):
        expand_inputs([str(d / "*.gz")])
    with pytest.raises(InputError, match="no such file"):
        expand_inputs([str(d / "nope.log")])
    with pytest.raises(InputError, match="only once"):
        expand_inputs(["-", "-"])


def test_sort_files_orders_nsq_to_file_names_by_time_then_rev():
    names = [
        "t.h-000001.2020-06-30_18.log.gz", "t.h-000000.2020-06-30_19.log.gz",
        "t.h-000000.2020-06-30_18.log.gz", "other.txt", "a.h-000000.2020-06-30_20.log.gz",
        "t.h-000010.2020-06-30_18.log.gz", "t.h-000002.2020-06-30_18.log.gz",
    ]
    shuffled = names[:]
    random.Random(4).shuffle(shuffled)
    assert sort_files(shuffled) == [
        "a.h-000000.2020-06-30_20.log.gz",
        "t.h-000000.2020-06-30_18.log.gz", "t.h-000001.2020-06-30_18.log.gz",
        "t.h-000002.2020-06-30_18.log.gz", "t.h-000010.2020-06-30_18.log.gz",
        "t.h-000000.2020-06-30_19.log.gz", "other.txt",
    ]


def test_renames_and_topic_resolution():
    assert parse_renames(["a=b", "c.d=e_f"]) == {"a": "b", "c.d": "e_f"}
    for bad in ["a", "=b", "a=", "a=b c"]:
        with pytest.raises(InputError):
            parse_renames([bad])
    resolver = TopicResolver(None, {"events": "events_copy"})
    assert resolver.for_file("/x/events.host-000000.2024-01-01_00.log.gz") == "events_copy"
    assert resolver.for_file("/x/whatever.bin") is None and resolver.for_file("-") is None
    assert resolver.check("events") == "events_copy" and resolver.check("x") == "x"
    with pytest.raises(InputError, match="invalid topic name 'bad topic'"):
        resolver.check("bad topic")
    fixed = TopicResolver("target", {"events": "other"})
    assert fixed.for_file("/x/events.host-000000.2024-01-01_00.log") == "target"
    with pytest.raises(InputError, match=r"Invalid value for '--topic': invalid topic name "
                                         r"'no spaces allowed': use 1-64 characters"):
        TopicResolver("no spaces allowed", {})


def test_parse_time():
    assert parse_time("1700000000", "--since") == 1_700_000_000_000_000_000
    assert parse_time("1700000000.5", "--since") == 1_700_000_000_500_000_000
    assert parse_time("2024-05-01T10:00:00Z", "--since") == int(
        datetime(2024, 5, 1, 10, tzinfo=timezone.utc).timestamp()) * 1_000_000_000
    assert parse_time("2024-05-01T12:00:00+02:00", "--until") == parse_time("2024-05-01T10:00:00Z", "x")
    local = datetime(2024, 5, 1, 10, 0, 0).timestamp()
    assert parse_time("2024-05-01 10:00:00", "--since") == int(local) * 1_000_000_000
    with pytest.raises(InputError, match="invalid --since 'yesterday'"):
        parse_time("yesterday", "--since")


def test_original_timing_scales_gaps():
    now = [100.0]
    timing = OriginalTiming(speed=2.0, clock=lambda: now[0])
    base = 1_700_000_000_000_000_000
    assert timing.wait(base) == 0.0
    assert timing.wait(base + 1_000_000_000) == pytest.approx(0.5)  # 1 s at 2x speed
    now[0] += 0.3
    assert timing.wait(base + 1_000_000_000) == pytest.approx(0.2)
    assert timing.wait(base - 5_000_000_000) == 0.0  # out of order: at once
    with pytest.raises(ValueError, match="--speed must be > 0"):
        OriginalTiming(speed=0)


def test_topic_sink_maps_acks_to_files_and_forgets_finished_segments():
    import asyncio

    from nsqcli.publisher.batch import Numbers
    from nsqcli.replay.engine import FileState, TopicSink

    class Publisher:
        async def publish(self, bodies):
            return True

    acks = []
    sink = TopicSink("t", Publisher(), lambda file, a, b, numbers: acks.append((file.key, a, b, numbers)))
    one, two = FileState("one"), FileState("two")

    async def feed():
        await sink.publish(one, [b"x"] * 3, 0, None)       # publisher numbers 1-3
        await sink.publish(two, [b"y"] * 2, 10, [10, 12])  # 4-5, listed file records
        await sink.publish(one, [b"z"] * 2, 3, None)       # 6-7

    asyncio.run(feed())
    sink.acknowledged(Numbers(2), 2)  # 2-3: the first segment is still missing record 1
    assert len(sink._segments) == 3
    sink.acknowledged(Numbers(0, [1, 4, 6]), 3)
    assert acks == [("one", 1, 3, None), ("one", 0, 1, None), ("two", 0, 0, [10]),
                    ("one", 3, 4, None)]
    assert [seg.first for seg in sink._segments] == [4, 6]  # segment 1-3 is done and forgotten
    sink.acknowledged(Numbers(5), 1)
    sink.acknowledged(Numbers(7), 1)
    assert acks[-2:] == [("two", 0, 0, [12]), ("one", 4, 5, None)]
    assert sink._segments == [] and sink._firsts == []
