"""TopicArchiver with sync_in_background (what nsq-to-file uses): the fdatasync runs on a worker
thread while messages keep being written; each batch is finished only when its own sync is over."""

import asyncio
import os
import time
from concurrent.futures import Executor, Future

import pytest

from fake_message import FakeMessage

from nsqcli.archive.files import ArchiveFile, ArchiveSettings
from nsqcli.archive.names import compute_filename_template
from nsqcli.to_file.topic_archiver import TopicArchiver


class HeldExecutor(Executor):
    """Runs nothing until the test releases a call: a sync that takes as long as the test wants.
    ``sizes`` records the file size when each sync was submitted (what it covers)."""

    def __init__(self, file):
        self.file = file
        self.calls = []
        self.sizes = []

    def submit(self, fn, *args):
        future = Future()
        self.calls.append((future, fn, args))
        self.sizes.append(os.path.getsize(self.file.path))
        return future

    def release(self, index=-1, error=None, seconds=None):
        future, fn, args = self.calls[index]
        if error is not None:
            future.set_exception(error)
            return
        took = fn(*args)  # the real fdatasync
        future.set_result(took if seconds is None else seconds)


def make(tmp_path, max_in_flight=4, executor=True, background_above=0.0, **settings):
    settings = ArchiveSettings(str(tmp_path), str(tmp_path), "%Y", **settings)
    template = compute_filename_template("<TOPIC><REV>.log", "t", hostname="h", gzip=False,
                                         rev_required=True)
    file = ArchiveFile(template, settings)
    held = HeldExecutor(file) if executor else None
    archiver = TopicArchiver("t", file, max_in_flight=max_in_flight, sync_in_background=True,
                             sync_executor=held, background_above=background_above)
    return archiver, held


async def settle():
    for _ in range(3):
        await asyncio.sleep(0)


def test_batch_finished_only_when_its_sync_is_over_while_writing_goes_on(tmp_path):
    async def main():
        archiver, held = make(tmp_path, max_in_flight=4)  # a sync starts at 4 // 2 = 2 waiting
        msgs = [FakeMessage(i) for i in range(6)]
        archiver.handle(msgs[0])
        assert held.calls == []
        archiver.handle(msgs[1])
        assert len(held.calls) == 1 and held.sizes == [len(b"msg-0\nmsg-1\n")]  # bytes written first
        for m in msgs[2:5]:  # written while the sync runs; no second sync at once
            archiver.handle(m)
        assert len(held.calls) == 1
        await settle()
        assert [m.answer for m in msgs] == [None] * 6
        held.release()
        await settle()
        # the first batch is finished; the 3 written meanwhile are synced next, not finished
        assert [m.answer for m in msgs[:5]] == ["FIN", "FIN", None, None, None]
        assert len(held.calls) == 2 and held.sizes[1] == len(b"".join(m.body + b"\n" for m in msgs[:5]))
        archiver.handle(msgs[5])
        held.release()
        await settle()
        assert [m.answer for m in msgs] == ["FIN"] * 5 + [None]
        assert archiver.unacknowledged == 1
        archiver.close()  # the final sync is synchronous
        assert msgs[5].answer == "FIN" and archiver.finished == 6
        data = open(archiver.file.closed_paths[0], "rb").read()
        assert data == b"".join(m.body + b"\n" for m in msgs)

    asyncio.run(main())


def test_failed_background_sync_requeues_its_batch_and_everything_after(tmp_path):
    async def main():
        archiver, held = make(tmp_path, max_in_flight=4)
        errors = []
        archiver.on_error = errors.append
        msgs = [FakeMessage(i) for i in range(4)]
        for m in msgs:
            archiver.handle(m)
        failure = OSError(5, "Input/output error")
        held.release(0, error=failure)
        await settle()
        assert [m.answer for m in msgs] == [("REQ", 0, False)] * 4
        assert archiver.error is failure and errors == [failure]
        late = FakeMessage(9)
        archiver.handle(late)
        assert late.answer == ("REQ", 0, False) and len(held.calls) == 1  # no sync after a failure
        assert archiver.sync() is False and archiver.finished == 0

    asyncio.run(main())


def test_sync_waits_for_the_running_background_sync(tmp_path):
    async def main():
        archiver, _ = make(tmp_path, max_in_flight=4, executor=False)  # a real worker thread
        msgs = [FakeMessage(i) for i in range(3)]
        for m in msgs:
            archiver.handle(m)
        assert archiver.syncing is not None  # 2 in the background sync, 1 pending
        assert archiver.sync() is True  # blocks until both are durable
        assert [m.answer for m in msgs] == ["FIN"] * 3 and archiver.syncing is None
        await settle()  # the worker's late completion callback finishes nothing twice
        assert archiver.finished == 3
        archiver.close()

    asyncio.run(main())


def test_rotation_waits_for_the_background_sync_of_the_old_file(tmp_path):
    async def main():
        archiver, held = make(tmp_path, max_in_flight=4, rotate_size=10)
        a, b = FakeMessage(1), FakeMessage(2)
        archiver.handle(a)
        archiver.handle(b)  # 14 bytes: background sync of a and b
        assert len(held.calls) == 1
        held.release()  # done on the worker, not yet seen by the loop
        c = FakeMessage(3)
        archiver.handle(c)  # over rotate_size: the old file is closed (its sync awaited), c synced
        assert c.answer == "FIN" and (a.answer, b.answer) == ("FIN", "FIN")
        await settle()
        assert archiver.finished == 3 and len(archiver.file.closed_paths) == 1
        archiver.close()

    asyncio.run(main())


def test_idle_check_starts_a_background_sync(tmp_path):
    async def main():
        archiver, held = make(tmp_path, max_in_flight=100)
        m = FakeMessage(1)
        archiver.handle(m)
        archiver.idle_check()
        assert held.calls == []  # a message arrived since the previous check
        archiver.idle_check()
        assert len(held.calls) == 1 and m.answer is None
        held.release()
        await settle()
        assert m.answer == "FIN"
        archiver.close()

    asyncio.run(main())


@pytest.mark.parametrize("gzip_", [False, True])
def test_many_messages_through_the_worker_thread(tmp_path, gzip_):
    async def main():
        archiver, _ = make(tmp_path, max_in_flight=40, executor=False, gzip=gzip_)
        msgs = [FakeMessage(i) for i in range(2000)]
        for i, m in enumerate(msgs):
            archiver.handle(m)
            if i % 7 == 0:
                await asyncio.sleep(0)  # let completions in, as the read loop would
        await asyncio.sleep(0.05)
        archiver.idle_check()
        archiver.idle_check()
        for _ in range(100):
            if archiver.finished == len(msgs):
                break
            await asyncio.sleep(0.01)
        assert all(m.answer == "FIN" for m in msgs) and archiver.syncs > 1
        archiver.close()
        data = open(archiver.file.closed_paths[0], "rb").read()
        if gzip_:
            import gzip
            data = gzip.decompress(data)  # a valid multi-member gzip: one member per sync
        assert data == b"".join(m.body + b"\n" for m in msgs)

    asyncio.run(main())


class RecordingConn:
    """What a Message needs from its connection; records how FINs were handed over."""

    id = "127.0.0.1:4150"

    def __init__(self):
        self.batches = []
        self.single = []

    def _on_messages_finish(self, messages):
        self.batches.append([m.id for m in messages])

    def _on_message_finish(self, message):
        self.single.append(message.id)


def test_real_messages_are_finished_as_one_batch_per_sync(tmp_path):
    from nsqcli.lib.message import Message

    async def main():
        archiver, held = make(tmp_path, max_in_flight=6)  # a sync starts at 3 waiting
        conn = RecordingConn()
        msgs = [Message(b"%016d" % i, b"m%d" % i, 0, 1, conn) for i in range(3)]
        for m in msgs:
            archiver.handle(m)
        held.release()
        await settle()
        assert conn.batches == [[m.id for m in msgs]] and conn.single == []
        # a message answered elsewhere meanwhile is skipped, the others still finished
        more = [Message(b"%016d" % i, b"m%d" % i, 0, 1, conn) for i in range(3, 6)]
        for m in more:
            archiver.handle(m)
        more[1].finish()
        held.release()
        await settle()
        assert conn.single == [more[1].id, more[0].id, more[2].id]
        assert all(m.has_responded() for m in msgs + more) and archiver.finished == 6
        archiver.close()

    asyncio.run(main())


def test_fast_fsyncs_stay_on_the_loop_slow_ones_go_to_the_worker(tmp_path, monkeypatch):
    # the disk's speed is what the test sets: a real fdatasync on a loaded machine can itself
    # take over 1 ms and would move the first batch to the worker
    import nsqcli.archive.files as archive_files

    monkeypatch.setattr(archive_files, "_data_sync", lambda fd: None)
    async def main():
        archiver, held = make(tmp_path, max_in_flight=4, background_above=0.001)
        real_sync = archiver.file.sync
        delay = {"s": 0.0}

        def timed_sync():
            time.sleep(delay["s"])
            real_sync()

        archiver.file.sync = timed_sync
        msgs = [FakeMessage(i) for i in range(12)]
        for m in msgs[:3]:
            archiver.handle(m)
        assert held.calls == [] and msgs[2].answer is None  # fast disk: wait for a full batch
        archiver.handle(msgs[3])  # all in flight: synced on the loop
        assert [m.answer for m in msgs[:4]] == ["FIN"] * 4 and held.calls == []
        delay["s"] = 0.02  # the disk slows down: the average passes 1 ms
        for m in msgs[4:8]:
            archiver.handle(m)
        assert [m.answer for m in msgs[4:8]] == ["FIN"] * 4 and archiver.sync_seconds > 0.001
        archiver.handle(msgs[8])
        archiver.handle(msgs[9])  # half of max-in-flight: to the worker
        assert len(held.calls) == 1 and msgs[9].answer is None
        for _ in range(20):  # fast fsyncs again: the average decays back below 1 ms
            held.release(seconds=0.0)
            await settle()
            if not archiver._background:
                break
            archiver.handle(FakeMessage(100))
            archiver.handle(FakeMessage(101))
        assert not archiver._background and archiver.sync_seconds < 0.001
        archiver.close()

    asyncio.run(main())
