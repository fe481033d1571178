"""ArchiveFile: rotation, REV, gzip members valid at each sync, moves that never overwrite."""

import gzip
import os
import resource
import zlib
from datetime import datetime

import pytest

from nsqcli.archive.files import ArchiveError, ArchiveFile, ArchiveSettings, exclusive_rename
from nsqcli.archive.names import compute_filename_template


class Clock:
    def __init__(self):
        self.wall = datetime(2024, 5, 1, 10, 0, 0).timestamp()  # local time, as the Go tool uses
        self.mono = 1000.0

    def now(self):
        return self.wall

    def monotonic(self):
        return self.mono


def make(tmp_path, clock, *, work=None, fmt="<TOPIC>.<HOST><REV>.<DATETIME>.log", **kw):
    out = str(tmp_path / "out")
    work_dir = str(tmp_path / work) if work else out
    settings = ArchiveSettings(work_dir=work_dir, output_dir=out, datetime_format="%Y-%m-%d_%H", **kw)
    rev_required = bool(kw.get("gzip") or kw.get("rotate_size") or kw.get("rotate_interval") or work)
    template = compute_filename_template(fmt, "t", hostname="h", gzip=kw.get("gzip", False),
                                         rev_required=rev_required)
    return ArchiveFile(template, settings, wall_clock=clock.now, monotonic=clock.monotonic)


def listing(path):
    return sorted(os.listdir(path))


def test_plain_append_without_rev(tmp_path):
    clock = Clock()
    f = make(tmp_path, clock)
    f.write(b"a\n")
    f.close()
    f2 = make(tmp_path, clock)  # a restart continues the same file (O_APPEND)
    f2.write(b"b\n")
    f2.close()
    assert listing(tmp_path / "out") == ["t.h.2024-05-01_10.log"]
    assert (tmp_path / "out" / "t.h.2024-05-01_10.log").read_bytes() == b"a\nb\n"


def test_datetime_change_rotates_and_resets_rev(tmp_path):
    clock = Clock()
    f = make(tmp_path, clock, rotate_size=5)
    f.write(b"1234\n")
    f.write(b"5678\n")  # size 5 is not > 5: same file
    f.write(b"9\n")  # now 10 > 5: rotate to rev 1
    clock.wall = datetime(2024, 5, 1, 11, 0, 0).timestamp()
    f.write(b"x\n")  # new hour: rev back to 0
    f.close()
    out = tmp_path / "out"
    assert listing(out) == ["t.h-000000.2024-05-01_10.log", "t.h-000000.2024-05-01_11.log",
                            "t.h-000001.2024-05-01_10.log"]
    assert (out / "t.h-000000.2024-05-01_10.log").read_bytes() == b"1234\n5678\n"
    assert (out / "t.h-000001.2024-05-01_10.log").read_bytes() == b"9\n"


def test_append_target_over_rotate_size_bumps_rev(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "t.h-000000.2024-05-01_10.log").write_bytes(b"x" * 100)
    f = make(tmp_path, Clock(), rotate_size=50)
    f.write(b"new\n")
    f.close()
    assert (out / "t.h-000001.2024-05-01_10.log").read_bytes() == b"new\n"


def test_rotate_interval_uses_exclusive_new_revisions(tmp_path):
    clock = Clock()
    f = make(tmp_path, clock, rotate_interval=60)
    f.write(b"a\n")
    clock.mono += 61
    assert f.needs_rotation()
    f.write(b"b\n")
    f.close()
    g = make(tmp_path, clock, rotate_interval=60)  # restart: O_EXCL skips existing revisions
    g.write(b"c\n")
    g.close()
    names = listing(tmp_path / "out")
    assert names == [f"t.h-00000{i}.2024-05-01_10.log" for i in range(3)]
    assert [(tmp_path / "out" / n).read_bytes() for n in names] == [b"a\n", b"b\n", b"c\n"]


def test_gzip_members_valid_at_every_sync_point(tmp_path):
    f = make(tmp_path, Clock(), gzip=True, gzip_level=1)
    path = None
    expected = b""
    for i in range(5):
        record = f"record {i}\n".encode()
        f.write(record)
        expected += record
        f.sync()
        path = f.path
        # at each sync point the file on disk is a complete, valid gzip stream
        with open(path, "rb") as fh:
            assert gzip.decompress(fh.read()) == expected
    f.close()
    data = (tmp_path / "out" / "t.h-000000.2024-05-01_10.log.gz").read_bytes()
    assert data.count(b"\x1f\x8b\x08") == 5  # one member per sync, no empty trailing member
    assert gzip.decompress(data) == expected


def test_large_writes_are_flushed_in_blocks_before_sync(tmp_path):
    f = make(tmp_path, Clock())
    f.write(b"x" * 300_000 + b"\n")
    assert os.path.getsize(f.path) == 300_001  # written at once, fsync still pending
    f.close()


def test_work_dir_moves_without_overwrite(tmp_path):
    clock = Clock()
    out = tmp_path / "out"
    out.mkdir()
    f = make(tmp_path, clock, work="work")
    f.write(b"first\n")
    assert f.path == str(tmp_path / "work" / "t.h-000000.2024-05-01_10.log")
    # another writer takes the output name while we write: the move bumps REV instead
    (out / "t.h-000000.2024-05-01_10.log").write_bytes(b"someone else\n")
    f.close()
    assert (out / "t.h-000000.2024-05-01_10.log").read_bytes() == b"someone else\n"
    assert (out / "t.h-000001.2024-05-01_10.log").read_bytes() == b"first\n"
    assert listing(tmp_path / "work") == []
    # opening again skips revisions already present in the output dir
    f.write(b"second\n")
    assert f.path.endswith("t.h-000002.2024-05-01_10.log")
    f.close()
    assert f.closed_paths[-1] == str(out / "t.h-000002.2024-05-01_10.log")


def test_subdirectories_in_filename_format(tmp_path):
    f = make(tmp_path, Clock(), fmt="<TOPIC>/<DATETIME>/<HOST><REV>.log", work="work")
    f.write(b"z\n")
    f.close()
    assert (tmp_path / "out" / "t" / "2024-05-01_10" / "h-000000.log").read_bytes() == b"z\n"


def test_exclusive_rename_never_replaces(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"A")
    b.write_bytes(b"B")
    with pytest.raises(FileExistsError):
        exclusive_rename(str(a), str(b))
    assert b.read_bytes() == b"B" and a.exists()


def test_open_error_names_the_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o500)
    try:
        if os.access(out, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        f = make(tmp_path, Clock())
        with pytest.raises(ArchiveError, match=r"opening .*t\.h\.2024-05-01_10\.log: Permission denied"):
            f.write(b"x\n")
    finally:
        out.chmod(0o700)


def test_write_error_surfaces_on_sync(tmp_path):
    f = make(tmp_path, Clock())
    f.write(b"ok\n")
    f.sync()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8, hard))  # Python ignores SIGXFSZ: EFBIG instead
    try:
        f.write(b"this record does not fit\n")
        with pytest.raises(ArchiveError, match="writing to .*File too large"):
            f.sync()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        f.abandon()


def test_truncated_gzip_member_detected_by_zlib(tmp_path):
    f = make(tmp_path, Clock(), gzip=True)
    f.write(b"a\n")
    f.sync()
    f.write(b"b" * 300_000 + b"\n")  # written, member not ended (as after kill -9)
    data = open(f.path, "rb").read()
    f.abandon()
    d = zlib.decompressobj(31)
    assert d.decompress(data) == b"a\n" and d.eof


def test_same_dir_spelled_differently_is_not_a_move(tmp_path):
    settings = ArchiveSettings(work_dir=str(tmp_path) + "/", output_dir=str(tmp_path) + "/./",
                               datetime_format="%Y")
    f = ArchiveFile("t<REV>.log", settings)
    f.write(b"x\n")
    f.close()
    assert os.listdir(tmp_path) == ["t-000000.log"]


def _fill_until_write_fails(f, limit):
    """Write records after a sync point until the (RLIMIT_FSIZE) disk is full."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        with pytest.raises(ArchiveError, match="File too large"):
            for n in range(100_000):
                f.write(b"record-%d\n" % n)
            f.sync()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_abandon_after_a_failed_write_cuts_the_partial_record(tmp_path):
    """A short write leaves half a record; abandon() cuts back to the last sync point, so a
    restart appending to the file cannot splice that half onto its first record."""
    clock = Clock()
    f = make(tmp_path, clock)
    f.write(b"synced\n")
    f.sync()
    path = f.path
    _fill_until_write_fails(f, 64 * 1024 + 3)  # no record boundary falls on the limit
    assert os.path.getsize(path) == 64 * 1024 + 3
    f.abandon()
    assert open(path, "rb").read() == b"synced\n"
    f2 = make(tmp_path, clock)
    f2.write(b"next\n")
    f2.close()
    assert open(path, "rb").read() == b"synced\nnext\n"


def test_abandon_keeps_what_a_background_sync_made_durable(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    f = make(tmp_path, Clock())
    f.write(b"first\n")
    with ThreadPoolExecutor(1) as executor:
        f.sync_in_background(executor)
        f.wait_background()
    f.write(b"unsynced\n")
    f._write_pending()  # handed to the kernel, never synced
    path = f.path
    f.abandon()
    assert open(path, "rb").read() == b"first\n"


@pytest.mark.parametrize("left, kept, cut", [
    (b"one\n12", b"one\n", 2),  # the start of a record whose write never finished
    (b"y" * 200_000, b"", 200_000),  # no newline at all, longer than one backward read
])
def test_reopening_a_file_with_a_partial_last_record_cuts_it(tmp_path, left, kept, cut):
    """A run killed mid-write (nothing could cut its file back) leaves half a record: the next
    run cuts it off, with a warning, before appending."""
    clock = Clock()
    f = make(tmp_path, clock)
    f.write(b"x\n")
    f.close()
    path = f.closed_paths[0]
    with open(path, "wb") as file:
        file.write(left)
    f2 = make(tmp_path, clock)
    warnings = []
    f2.on_warning = warnings.append
    f2.write(b"two\n")
    f2.close()
    assert open(path, "rb").read() == kept + b"two\n"
    assert len(warnings) == 1 and f"partial record ({cut} bytes" in warnings[0], warnings
