"""The archive file one nsq-to-file topic writes: rotation, gzip members, fsync, moves.

Behaviour follows the Go ``nsq_to_file`` FileLogger:

* the name is the topic's template with ``<DATETIME>`` rendered now; a new ``<DATETIME>``, an
  elapsed ``rotate_interval`` or more than ``rotate_size`` bytes written rotates the file;
* ``<REV>`` starts at 0 for a new name and is bumped while the name exists (in the work dir or the
  output dir) or an append target is already over ``rotate_size``;
* files are opened O_APPEND (continuing an existing file) unless gzip or a rotate interval is set,
  then O_EXCL (always a fresh revision);
* :meth:`ArchiveFile.sync` makes everything written so far durable: for gzip it ends the current
  member (so the file is a valid concatenated gzip at every sync point), then fdatasyncs (the
  directory is fsynced when a file is created or moved);
* on close the file moves from the work dir to the output dir by hard link + unlink, which never
  overwrites: on a conflict ``<REV>`` is bumped.

Every OS error propagates (as :class:`ArchiveError` naming the file and the operation); the
caller must then not acknowledge anything it wrote since the last successful sync, and
:meth:`ArchiveFile.abandon` cuts the file back to its last synced byte, so a partial record left
by a failed write is never continued by a restart (which would splice two records into one that
was never published). A file reopened for appending that does not end with a complete record
(the process was killed mid-write) is cut back to its last newline first. The clock is injected
so rotation is tested without waiting.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
import zlib
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from nsqcli.archive.names import REV_TOKEN, render_datetime, render_rev

DIR_MODE = 0o770
FILE_MODE = 0o666
# Records are gathered in memory and written in blocks of this size (and at every sync).
WRITE_BLOCK = 256 * 1024


class ArchiveError(OSError):
    """A write, sync, open, close or move failed; the message names the file and the operation."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


@dataclass
class ArchiveSettings:
    work_dir: str
    output_dir: str
    datetime_format: str
    gzip: bool = False
    gzip_level: int = 6
    rotate_size: int = 0
    rotate_interval: float = 0.0  # seconds; 0 = never

    def __post_init__(self) -> None:
        # "/tmp/" and "/tmp" are the same directory: no move between them
        self.work_dir = os.path.normpath(self.work_dir)
        self.output_dir = os.path.normpath(self.output_dir)


# fdatasync makes the data (and the size needed to read it back) durable, like fsync, without
# also flushing timestamps: measurably cheaper per batch. The directory entry of a new file is
# made durable once, when the file is created (which neither call does; the Go tool never does).
_data_sync = getattr(os, "fdatasync", os.fsync)


def _sync_fd(fd: int, path: str) -> float:
    """fdatasync on an executor thread (the GIL is released during the call); its seconds."""
    started = time.perf_counter()
    try:
        _data_sync(fd)
    except OSError as exc:
        raise _fail("syncing", path, exc) from None
    return time.perf_counter() - started


def sync_directory(path: str) -> None:
    """fsync a directory so that files created in (or moved to) it survive a crash."""
    fd = os.open(path or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def exclusive_rename(src: str, dst: str) -> None:
    """Move ``src`` to ``dst`` without ever replacing ``dst`` (FileExistsError when it exists)."""
    os.link(src, dst)
    os.unlink(src)


def complete_records_end(path: str, size: int, chunk: int = 64 * 1024) -> int:
    """The offset just after the last newline of the first ``size`` bytes of ``path`` (0 if
    there is none): where its last complete record ends."""
    with open(path, "rb") as file:
        end = size
        while end > 0:
            start = max(0, end - chunk)
            file.seek(start)
            found = file.read(end - start).rfind(b"\n")
            if found >= 0:
                return start + found + 1
            end = start
    return 0


def make_parent_dirs(path: str) -> None:
    parent = os.path.dirname(path)
    if parent:
        make_dirs(parent)


def make_dirs(path: str) -> None:
    """``os.makedirs(path)`` (existing is fine); ArchiveError naming the directory, and the
    file in the way when a part of ``path`` is a regular file (not "File exists")."""
    try:
        os.makedirs(path, mode=DIR_MODE, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        blocker = path
        while blocker and not os.path.lexists(blocker):
            blocker = os.path.dirname(blocker)
        what = "it" if blocker == path else blocker
        err = ArchiveError(errno.ENOTDIR, f"cannot create the directory {path}: {what} is a "
                           "file, not a directory")
        err.__cause__ = exc
        raise err from None
    except OSError as exc:
        raise _fail("cannot create the directory", path, exc) from None


def check_directory(path: str) -> None:
    """Create ``path`` when missing and prove that files can be created in it (a probe file,
    removed at once: permissions, read-only file systems and ACLs all show); ArchiveError."""
    make_dirs(path)
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".nsq-to-file-probe-")
    except OSError as exc:
        raise _fail("cannot create files in", path, exc) from None
    os.close(fd)
    os.unlink(probe)


def _fail(what: str, path: str, exc: OSError) -> ArchiveError:
    reason = exc.strerror or str(exc)
    err = ArchiveError(exc.errno, f"{what} {path}: {reason}")
    err.__cause__ = exc
    return err


class ArchiveFile:
    """The current output file of one topic; not thread-safe (one event loop drives it)."""

    def __init__(self, template: str, settings: ArchiveSettings,
                 wall_clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.template = template
        self.settings = settings
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._name_second: int | None = None  # the wall-clock second _name_cache was made for
        self._name_cache = ""
        self._name_checked_until = 0.0  # needs_rotation: name known current until then
        self._size_limit = float("inf")  # write(): rotate_size, checked in full once exceeded
        self._rotate_due = 0.0  # write(): monotonic time the rotate_interval is up (0: never)
        self._fd: int | None = None
        self.path: str | None = None  # current file in the work dir
        self.name = ""  # current name with <REV> still a token ("" before the first file)
        self.rev = 0
        self.size = 0  # bytes accepted into this file (uncompressed, as the Go tool counts)
        self._opened_at = 0.0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._compressor: zlib._Compress | None = None  # the open gzip member, if any
        self._background: Future[float] | None = None  # the fdatasync running on an executor, if any
        self._background_end = 0  # the file offset that background fdatasync makes durable
        self._disk_end = 0  # bytes of the current file handed to the kernel
        self._synced_end = 0  # ... of which durable (the last complete record at a sync point)
        self.on_warning: Callable[[str], None] | None = None  # told when a file is repaired
        self.closed_paths: list[str] = []  # final locations of files closed so far

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def _current(self) -> tuple[int, str]:
        """The open file's descriptor and path (opened together by rotate())."""
        fd, path = self._fd, self.path
        if fd is None or path is None:
            raise ArchiveError(errno.EBADF, "no archive file is open")
        return fd, path

    # -- writing ---------------------------------------------------------------------------

    def write(self, data: bytes) -> bool:
        """Accept encoded records; opens or rotates the file first when needed. Returns True
        when that closed (and so synced) a previous file."""
        # The per-message hot path: one clock read and two comparisons decide that the name is
        # still current and no limit is reached (needs_rotation() in full only when one is).
        rotated = False
        if (self._wall_clock() >= self._name_checked_until or self.size > self._size_limit
                or (self._rotate_due and self._monotonic() > self._rotate_due)):
            if self._fd is None:
                self.rotate()
            elif self.needs_rotation():
                self.rotate()
                rotated = True
        size = len(data)
        self._pending.append(data)
        self._pending_bytes += size
        self.size += size
        if self._pending_bytes >= WRITE_BLOCK:
            self._write_pending()
        return rotated

    def _write_pending(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        if self.settings.gzip:
            if self._compressor is None:
                self._compressor = zlib.compressobj(self.settings.gzip_level, zlib.DEFLATED, 31)
            data = self._compressor.compress(data)
        self._write_all(data)

    def _write_all(self, data: bytes) -> None:
        fd, path = self._current()
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                self._disk_end += written
                view = view[written:]
        except OSError as exc:
            raise _fail("writing to", path, exc) from None

    def sync(self) -> None:
        """Make everything accepted so far durable: write, end the gzip member, fsync."""
        self.wait_background()
        if self._fd is None:
            return
        self._write_accepted()
        fd, path = self._current()
        try:
            _data_sync(fd)
        except OSError as exc:
            raise _fail("syncing", path, exc) from None
        self._synced_end = self._disk_end

    def sync_in_background(self, executor: Executor) -> Future[float] | None:
        """Like :meth:`sync`, but the fdatasync runs on ``executor`` (it releases the GIL, so the
        caller keeps receiving and writing meanwhile). Everything accepted *before* this call is
        durable once the returned Future completes (with the fdatasync's seconds); it raises
        ArchiveError if the sync failed.
        None when no file is open. One background sync at a time: a previous one is awaited."""
        self.wait_background()
        if self._fd is None:
            return None
        self._write_accepted()
        self._background_end = self._disk_end
        self._background = future = executor.submit(_sync_fd, *self._current())
        return future

    def wait_background(self) -> None:
        """Block until the background sync (if any) is over; re-raise its ArchiveError. Called
        before anything that syncs again or closes the descriptor it is syncing."""
        background, self._background = self._background, None
        if background is not None:
            background.result()
            self._synced_end = self._background_end

    def _write_accepted(self) -> None:
        """Hand every accepted byte to the kernel, ending the gzip member (a sync point)."""
        self._write_pending()
        if self._compressor is not None:
            self._write_all(self._compressor.flush(zlib.Z_FINISH))
            self._compressor = None  # the next write starts a new member

    # -- rotation --------------------------------------------------------------------------

    def current_name(self) -> str:
        # No strftime directive resolves below a second: render at most once per second.
        second = int(self._wall_clock())
        if second != self._name_second:
            now = datetime.fromtimestamp(second).astimezone()  # local time, with its zone name
            self._name_cache = render_datetime(self.template, self.settings.datetime_format, now)
            self._name_second = second
        return self._name_cache

    def needs_rotation(self) -> bool:
        if self._fd is None:
            return True
        now = self._wall_clock()
        if now >= self._name_checked_until:  # the name cannot change within a second
            if self.current_name() != self.name:
                return True
            self._name_checked_until = int(now) + 1
        s = self.settings
        if s.rotate_interval > 0 and self._monotonic() - self._opened_at > s.rotate_interval:
            return True
        return s.rotate_size > 0 and self.size > s.rotate_size

    def rotate(self) -> None:
        """Close the current file (if any) and open the next one."""
        self.close()
        name = self.current_name()
        self.rev = 0 if name != self.name else self.rev + 1
        self.name = name
        self._name_checked_until = 0.0
        self._opened_at = self._monotonic()
        s = self.settings
        self._size_limit = s.rotate_size if s.rotate_size > 0 else float("inf")
        self._rotate_due = self._opened_at + s.rotate_interval if s.rotate_interval > 0 else 0.0
        full = os.path.join(s.work_dir, name)
        make_parent_dirs(render_rev(full, self.rev))
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        flags |= os.O_EXCL if (s.gzip or s.rotate_interval > 0) else os.O_APPEND
        while True:
            path = render_rev(full, self.rev)
            if s.work_dir != s.output_dir:
                # Skip revisions that already exist in the output dir so the final move is
                # normally conflict free.
                target = self._output_path(path)
                make_parent_dirs(target)
                if os.path.lexists(target):
                    self._next_rev(full)
                    continue
            try:
                fd = os.open(path, flags, FILE_MODE)
            except FileExistsError:
                self._next_rev(full)
                continue
            except OSError as exc:
                raise _fail("opening", path, exc) from None
            size = os.fstat(fd).st_size
            if s.rotate_size > 0 and size > s.rotate_size:
                os.close(fd)
                self._next_rev(full)
                continue
            if size:
                try:
                    size = self._cut_partial_record(fd, path, size)
                except OSError as exc:
                    os.close(fd)
                    raise _fail("repairing", path, exc) from None
            break
        if size == 0:  # a new file: make its directory entry durable before relying on it
            try:
                sync_directory(os.path.dirname(path))
            except OSError as exc:
                os.close(fd)
                raise _fail("syncing the directory of", path, exc) from None
        self._fd = fd
        self.path = path
        self.size = size
        self._disk_end = self._synced_end = size

    def _cut_partial_record(self, fd: int, path: str, size: int) -> int:
        """An appended file must end with a complete record: cut a partial last one (left by
        a process killed mid-write) back to the last newline. Returns the new size."""
        end = complete_records_end(path, size)
        if end == size:
            return size
        os.ftruncate(fd, end)
        _data_sync(fd)
        if self.on_warning is not None:
            self.on_warning(f"{path} ended with a partial record ({size - end} bytes after the "
                            "last newline, left by an interrupted run): cut it off before "
                            "appending")
        return end

    def _next_rev(self, full: str) -> None:
        if REV_TOKEN not in full:
            raise ArchiveError(errno.EEXIST, f"cannot pick a new name for {full}: "
                               "--filename-format has no <REV>")
        self.rev += 1

    def _output_path(self, work_path: str) -> str:
        s = self.settings
        return os.path.join(s.output_dir, os.path.relpath(work_path, s.work_dir))

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Sync and close the current file and move it to the output dir (no-op when closed)."""
        if self._fd is None:
            return
        self.sync()
        fd, path = self._current()
        self._fd = None
        self._name_checked_until = 0.0  # the next write() opens a file
        try:
            os.close(fd)
        except OSError as exc:
            raise _fail("closing", path, exc) from None
        final = path
        if self.settings.work_dir != self.settings.output_dir:
            final = self._move_to_output(path)
        self.closed_paths.append(final)

    def _move_to_output(self, src: str) -> str:
        dst = self._output_path(src)
        rev = self.rev
        while True:
            try:
                exclusive_rename(src, dst)
                sync_directory(os.path.dirname(dst))
                return dst
            except FileExistsError:
                rev += 1
                dst = render_rev(self._output_path(os.path.join(self.settings.work_dir, self.name)), rev)
            except OSError as exc:
                raise _fail(f"moving {src} to", dst, exc) from None

    def abandon(self) -> None:
        """After an error: cut the file back to its last sync point (what was written since,
        maybe a partial record, was not acknowledged and will be redelivered), then close the
        descriptor without moving the file. Best effort: a file this cannot cut is repaired
        when a restart reopens it."""
        try:
            self.wait_background()  # its thread must not sync a reused descriptor number
        except OSError:
            pass
        fd, self._fd = self._fd, None
        if fd is not None and self._disk_end != self._synced_end:
            try:
                os.ftruncate(fd, self._synced_end)
                _data_sync(fd)
            except OSError:
                pass
        self._name_checked_until = 0.0
        self._pending.clear()
        self._pending_bytes = 0
        self._compressor = None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
