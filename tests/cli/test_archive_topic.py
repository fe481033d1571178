"""TopicArchiver: FIN only after fsync, sync triggers, failures requeue and stop finishing."""

import gzip
import os
import resource

import pytest

from fake_message import FakeMessage

from nsqcli.archive.files import ArchiveError, ArchiveFile, ArchiveSettings
from nsqcli.archive.format import decode_jsonl
from nsqcli.archive.names import compute_filename_template
from nsqcli.to_file.topic_archiver import TopicArchiver


class Clock:
    def __init__(self):
        self.t = 5000.0

    def __call__(self):
        return self.t


@pytest.fixture
def setup(tmp_path):
    def build(*, gzip_=False, fmt="raw", max_in_flight=3, starved=lambda: False, **kw):
        settings = ArchiveSettings(str(tmp_path), str(tmp_path), "%Y", gzip=gzip_, **kw)
        template = compute_filename_template("<TOPIC><REV>.log", "t", hostname="h", gzip=gzip_,
                                             rev_required=True)
        clock = Clock()
        file = ArchiveFile(template, settings, monotonic=clock)
        syncs = []
        real_sync = file.sync

        def counting_sync():
            syncs.append(os.path.getsize(file.path) if file.path else 0)
            real_sync()

        file.sync = counting_sync
        archiver = TopicArchiver("t", file, fmt=fmt, max_in_flight=max_in_flight, is_starved=starved)
        return archiver, clock, syncs
    return build


def test_fin_only_after_sync_at_max_in_flight(setup):
    archiver, _, syncs = setup(max_in_flight=3)
    msgs = [FakeMessage(i) for i in range(7)]
    for m in msgs[:2]:
        archiver.handle(m)
    assert all(m.async_enabled for m in msgs[:2])
    assert [m.answer for m in msgs[:2]] == [None, None] and syncs == []
    archiver.handle(msgs[2])  # batch full -> sync -> FIN
    assert [m.answer for m in msgs[:3]] == ["FIN"] * 3 and len(syncs) == 1
    for m in msgs[3:]:
        archiver.handle(m)
    assert msgs[6].answer is None and archiver.unacknowledged == 1
    archiver.close()
    assert all(m.answer == "FIN" for m in msgs)
    data = open(archiver.file.closed_paths[0], "rb").read()
    assert data == b"".join(b"msg-%d\n" % i for i in range(7))


def test_starved_reader_triggers_sync(setup):
    starved = {"now": False}
    archiver, _, syncs = setup(max_in_flight=100, starved=lambda: starved["now"])
    archiver.handle(FakeMessage(1))
    assert syncs == []
    starved["now"] = True
    m = FakeMessage(2)
    archiver.handle(m)
    assert m.answer == "FIN" and len(syncs) == 1


def test_idle_sync_acknowledges_a_drained_channel(setup):
    archiver, _, syncs = setup(max_in_flight=100)
    m = FakeMessage(1)
    archiver.handle(m)
    archiver.idle_check()
    assert m.answer is None  # a message arrived since the last check: more may follow
    n = FakeMessage(2)
    archiver.handle(n)
    archiver.idle_check()
    assert n.answer is None
    archiver.idle_check()  # nothing new for a whole interval: sync
    assert (m.answer, n.answer) == ("FIN", "FIN") and len(syncs) == 1
    archiver.idle_check()  # nothing pending: no empty sync
    assert len(syncs) == 1


def test_tick_rotates_and_syncs(setup):
    archiver, clock, _ = setup(max_in_flight=100, rotate_interval=10)
    first = FakeMessage(1)
    archiver.handle(first)
    clock.t += 11
    archiver.tick()
    assert first.answer == "FIN"
    second = FakeMessage(2)
    archiver.handle(second)
    archiver.close()
    assert [os.path.basename(p) for p in archiver.file.closed_paths] == ["t-000000.log", "t-000001.log"]


def test_skip_empty_files_closes_without_new_file(setup):
    archiver, clock, _ = setup(max_in_flight=100, rotate_interval=10)
    archiver.skip_empty_files = True
    archiver.handle(FakeMessage(1))
    clock.t += 11
    archiver.tick()
    assert not archiver.file.is_open
    assert len(archiver.file.closed_paths) == 1


def test_rotation_on_message_syncs_new_file(setup):
    archiver, clock, _ = setup(max_in_flight=100, rotate_size=5)
    a, b = FakeMessage(1, b"123456"), FakeMessage(2, b"x")
    archiver.handle(a)
    assert a.answer is None
    archiver.handle(b)  # file is over 5 bytes: rotate (closing syncs a), sync b in the new file
    assert a.answer == "FIN" and b.answer == "FIN"


def test_sighup_close_file_then_reopen(setup):
    archiver, _, _ = setup(max_in_flight=100)
    archiver.handle(FakeMessage(1))
    archiver.close_file()
    assert not archiver.file.is_open and archiver.file.closed_paths
    archiver.handle(FakeMessage(2))
    assert archiver.file.is_open


def test_jsonl_gzip_records(setup):
    archiver, _, _ = setup(gzip_=True, fmt="jsonl", max_in_flight=2)
    bodies = [b"line\nbreak", b"\xff\x00bin", b"plain"]
    msgs = [FakeMessage(i, body) for i, body in enumerate(bodies)]
    for m in msgs:
        archiver.handle(m)
    archiver.close()
    lines = gzip.decompress(open(archiver.file.closed_paths[0], "rb").read()).splitlines()
    records = [decode_jsonl(line) for line in lines]
    assert [r.body for r in records] == bodies
    assert [r.id for r in records] == [m.id.decode() for m in msgs]
    assert {r.topic for r in records} == {"t"}


def test_write_error_requeues_everything_unsynced_and_stops(setup):
    archiver, _, _ = setup(max_in_flight=100)
    errors = []
    archiver.on_error = errors.append
    synced = FakeMessage(0)
    archiver.handle(synced)
    archiver.sync()
    pending = [FakeMessage(i) for i in range(1, 4)]
    for m in pending:
        archiver.handle(m)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4, hard))
    try:
        assert archiver.sync() is False
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert synced.answer == "FIN"
    assert [m.answer for m in pending] == [("REQ", 0, False)] * 3
    assert isinstance(archiver.error, ArchiveError) and errors == [archiver.error]
    late = FakeMessage(9)
    archiver.handle(late)  # after a failure nothing is written or finished
    assert late.answer == ("REQ", 0, False)
    archiver.close()  # no exception, nothing finished
    assert archiver.finished == 1


def test_invalid_max_in_flight(setup, tmp_path):
    file = ArchiveFile("x<REV>", ArchiveSettings(str(tmp_path), str(tmp_path), "%Y"))
    with pytest.raises(ValueError, match="max_in_flight must be >= 1"):
        TopicArchiver("t", file, max_in_flight=0)


def test_is_starved_asked_only_from_the_floor(setup):
    asked = []

    def starved():
        asked.append(archiver.unacknowledged)
        return archiver.unacknowledged >= 4

    archiver, _, _ = setup(max_in_flight=100, starved=starved)
    archiver.starved_floor = lambda: 3
    archiver.handle(FakeMessage(0))
    archiver.sync()  # the floor is learned at each sync
    msgs = [FakeMessage(i) for i in range(1, 6)]
    for m in msgs:
        archiver.handle(m)
    assert asked[-2:] == [3, 4]  # not asked with 1 or 2 waiting (after the first sync)
    assert [m.answer for m in msgs] == ["FIN"] * 4 + [None]


def test_starved_floor_from_reader_rdy():
    from types import SimpleNamespace

    from nsqcli.to_file.command import starved_floor

    conns = {"a": SimpleNamespace(last_rdy=200), "b": SimpleNamespace(last_rdy=40)}
    assert starved_floor(SimpleNamespace(conns=conns)) == 34
    assert starved_floor(SimpleNamespace(conns={})) == 1
    assert starved_floor(SimpleNamespace(conns={"a": SimpleNamespace(last_rdy=1)})) == 1
