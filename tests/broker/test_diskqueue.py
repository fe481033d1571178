"""DiskQueue (the embedded nsqd's disk half of a topic or channel): order, segment files,
restarts, torn tails and corruption after a crash."""

from __future__ import annotations

import json
import os

import pytest

from nsqcli.broker.nsqd.backend import MessageDiskQueue, decode, encode
from nsqcli.broker.nsqd.diskqueue import HEADER, STATE_FILE, DiskQueue, segment_name
from nsqcli.broker.nsqd.message import Message


def open_queue(path, **overrides) -> DiskQueue:
    settings = dict(max_bytes_per_file=1 << 20, max_record_size=1 << 16, sync_every=2500,
                    sync_timeout=2.0)
    settings.update(overrides)
    return DiskQueue(str(path), **settings)


def records(count: int, start: int = 0) -> list[bytes]:
    return [b"record-%06d" % i for i in range(start, start + count)]


def read_all(queue: DiskQueue) -> list[bytes]:
    out = []
    while True:
        batch = queue.read(7)  # an odd batch size crosses record and segment boundaries
        if not batch:
            return out
        out += batch


def segments(path) -> list[str]:
    return sorted(name for name in os.listdir(path) if name.endswith(".seg"))


def test_a_queue_that_never_overflowed_touches_no_disk(tmp_path):
    queue = open_queue(tmp_path / "q")
    queue.sync()
    queue.close()
    assert not (tmp_path / "q").exists()


def test_records_come_back_in_order_and_depth_counts_them(tmp_path):
    queue = open_queue(tmp_path / "q")
    queue.put(records(10))
    queue.put(records(5, start=10))
    assert queue.depth == 15
    assert queue.read(4) == records(4)
    assert queue.depth == 11
    assert read_all(queue) == records(11, start=4)
    assert queue.depth == 0
    assert queue.read(10) == []


def test_writes_wrap_across_segment_files_and_read_segments_are_deleted(tmp_path):
    queue = open_queue(tmp_path / "q", max_bytes_per_file=100)  # about 5 records per segment
    queue.put(records(30))
    assert len(segments(tmp_path / "q")) == 6
    assert queue.read(12) == records(12)
    assert len(segments(tmp_path / "q")) == 4  # the two segments read to their end are gone
    queue.put(records(10, start=30))
    assert read_all(queue) == records(28, start=12)
    assert segments(tmp_path / "q") == [segment_name(8)]  # only the one being written


def test_a_restart_keeps_the_unread_records_and_the_read_position(tmp_path):
    queue = open_queue(tmp_path / "q", max_bytes_per_file=100)
    queue.put(records(30))
    assert queue.read(8) == records(8)
    queue.close()
    again = open_queue(tmp_path / "q", max_bytes_per_file=100)
    assert again.depth == 22
    again.put(records(3, start=30))
    assert read_all(again) == records(25, start=8)


def test_records_written_after_the_last_sync_survive_a_crash(tmp_path):
    queue = open_queue(tmp_path / "q", max_bytes_per_file=100, sync_every=100)
    queue.put(records(5))
    queue.sync()  # the state counts 5 records
    queue.put(records(8, start=5))  # 8 more, unsynced, into this segment and two new ones
    assert json.loads((tmp_path / "q" / STATE_FILE).read_text())["write"][0] == 1
    # a killed process: nothing closed or synced; what os.write wrote is in the files
    again = open_queue(tmp_path / "q", max_bytes_per_file=100)
    assert again.depth == 13
    assert read_all(again) == records(13)


def test_a_torn_tail_is_cut_off_and_the_queue_carries_on(tmp_path):
    queue = open_queue(tmp_path / "q", sync_every=1)
    queue.put(records(5))
    last = tmp_path / "q" / segments(tmp_path / "q")[-1]
    whole = last.stat().st_size
    with open(last, "ab") as segment:  # a record cut short by a crash (or power loss)
        segment.write(HEADER.pack(100, 0) + b"only part of it")
    again = open_queue(tmp_path / "q")
    assert again.depth == 5
    assert last.stat().st_size == whole
    again.put(records(2, start=5))
    assert read_all(again) == records(7)


def test_a_corrupt_record_skips_the_rest_of_its_segment_only(tmp_path, caplog):
    queue = open_queue(tmp_path / "q", max_bytes_per_file=100)
    queue.put(records(15))  # three segments of five
    queue.close()
    first = tmp_path / "q" / segments(tmp_path / "q")[0]
    data = bytearray(first.read_bytes())
    data[HEADER.size + len(records(1)[0]) + HEADER.size + 3] ^= 0xFF  # the second record's body
    first.write_bytes(bytes(data))
    again = open_queue(tmp_path / "q", max_bytes_per_file=100)
    assert again.depth == 15  # the state says so; the damage shows when reading
    assert read_all(again) == records(1) + records(10, start=5)
    assert again.depth == 0
    assert "corrupt" in caplog.text


def test_corruption_in_the_segment_being_written_moves_writing_on(tmp_path):
    queue = open_queue(tmp_path / "q")
    queue.put(records(4))
    path = tmp_path / "q" / segments(tmp_path / "q")[0]
    data = bytearray(path.read_bytes())
    data[HEADER.size + 2] ^= 0xFF  # the first record
    path.write_bytes(bytes(data))
    assert queue.read(10) == []
    assert queue.depth == 0
    queue.put(records(2, start=4))
    assert read_all(queue) == records(2, start=4)


def test_without_a_state_file_every_segment_is_scanned(tmp_path):
    queue = open_queue(tmp_path / "q", max_bytes_per_file=100)
    queue.put(records(12))
    queue.close()
    os.unlink(tmp_path / "q" / STATE_FILE)
    again = open_queue(tmp_path / "q", max_bytes_per_file=100)
    assert again.depth == 12
    assert read_all(again) == records(12)


def test_a_segment_deleted_before_the_state_was_saved_counts_as_read(tmp_path):
    queue = open_queue(tmp_path / "q", max_bytes_per_file=100, sync_every=1000)
    queue.put(records(12))
    queue.sync()
    assert queue.read(6) == records(6)  # the first segment is read and unlinked, state unsaved
    again = open_queue(tmp_path / "q", max_bytes_per_file=100)
    assert again.depth == 7  # the sixth record is read again: at least once, as in nsqd
    assert read_all(again) == records(7, start=5)


def test_sync_every_saves_the_positions(tmp_path):
    queue = open_queue(tmp_path / "q", sync_every=3)
    queue.put(records(2))
    assert not (tmp_path / "q" / STATE_FILE).exists()
    queue.put(records(1, start=2))
    state = json.loads((tmp_path / "q" / STATE_FILE).read_text())
    assert state["write"] == [1, 3 * (HEADER.size + len(records(1)[0]))]
    assert queue.read(3) == records(3)
    assert json.loads((tmp_path / "q" / STATE_FILE).read_text())["read"][2] == 3


def test_empty_and_delete(tmp_path):
    queue = open_queue(tmp_path / "q", max_bytes_per_file=100)
    queue.put(records(12))
    queue.empty()
    assert queue.depth == 0 and segments(tmp_path / "q") == []
    queue.put(records(2, start=12))
    queue.close()
    again = open_queue(tmp_path / "q", max_bytes_per_file=100)
    assert read_all(again) == records(2, start=12)
    again.delete()
    assert not (tmp_path / "q").exists()


def test_a_failed_write_leaves_no_partial_record(tmp_path, monkeypatch):
    queue = open_queue(tmp_path / "q")
    queue.put(records(3))
    real_write = os.write

    def half_then_full(fd, data):
        monkeypatch.setattr(os, "write", failing)
        return real_write(fd, data[: len(data) // 2])

    def failing(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError):
        queue.put(records(4, start=3))
    monkeypatch.setattr(os, "write", real_write)
    assert queue.depth == 3
    queue.put(records(1, start=7))
    assert read_all(queue) == records(3) + records(1, start=7)


def test_messages_keep_id_body_timestamp_and_attempts(tmp_path):
    msg = Message(b"0123456789abcdef", b"body \x00\xff", timestamp=1234567890123456789)
    msg.attempts = 3
    twin = decode(encode(msg))
    assert (twin.id, twin.body, twin.timestamp, twin.attempts) == (msg.id, msg.body,
                                                                  msg.timestamp, 3)
    assert decode(b"too short") is None
    queue = MessageDiskQueue(str(tmp_path / "m"), max_bytes_per_file=1 << 20,
                             max_record_size=1 << 16, sync_every=10, sync_timeout=1.0)
    queue.put_messages([msg])
    (back,) = queue.read_messages(5)
    assert (back.id, back.body, back.attempts) == (msg.id, msg.body, 3)
