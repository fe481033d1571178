"""DiskQueue: a crash-tolerant FIFO of byte records in segment files (a topic's or channel's disk half).

Like go-diskqueue, which nsqd uses, a queue appends records to numbered segment files, reads
them back in order, deletes a segment once it is read, and syncs (fsync plus a saved read/write
position) every ``sync_every`` changes or ``sync_timeout`` seconds rather than per record. The
format is our own; one queue is one directory::

    00000000000000000001.seg   segments, oldest first; a new one starts past max_bytes_per_file
    state.json                 as of the last sync: the read position, the write position and
                               how many records each segment holds (written to a temporary
                               file, fsynced, then renamed over the old one)

A record is ``>I length``, ``>I crc32(payload)``, then ``length`` bytes of payload.

Crash tolerance: a record is written with one ``os.write`` (no user-space buffer), so a killed
process loses nothing it wrote. After a crash or power loss, opening the queue trusts
``state.json`` up to its write position and scans only what was appended after it, counting
whole records; a torn or corrupt tail of the last segment is cut off. Records read since the last
sync are read again (at least once, as with nsqd). A corrupt record found while reading ends its
segment: the rest of that segment is skipped and ``depth`` drops by what it still held.
Without a readable ``state.json`` every segment is scanned from its start.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import time
import zlib

log = logging.getLogger("nsqcli.broker.nsqd")

HEADER = struct.Struct(">II")
STATE_FILE = "state.json"
SEGMENT_SUFFIX = ".seg"
#: Bytes read from a segment at a time (more when one record is bigger).
READ_CHUNK = 256 * 1024
_FORMAT = 1


def segment_name(number: int) -> str:
    return f"{number:020d}{SEGMENT_SUFFIX}"


def scan_records(data: bytes, offset: int, max_record_size: int) -> tuple[int, int, bool]:
    """(whole valid records in ``data[offset:]``, offset just past the last of them, whether a
    corrupt record stopped the scan rather than the end of ``data``)."""
    count = 0
    end = len(data)
    unpack = HEADER.unpack_from
    crc32 = zlib.crc32
    view = memoryview(data)
    while offset + HEADER.size <= end:
        length, crc = unpack(data, offset)
        stop = offset + HEADER.size + length
        if length > max_record_size:
            return count, offset, True
        if stop > end:
            break
        if crc32(view[offset + HEADER.size:stop]) != crc:
            return count, offset, True
        count += 1
        offset = stop
    return count, offset, False


class DiskQueue:
    """``put(records)`` appends, ``read(limit)`` takes up to ``limit`` oldest records.

    The directory is created by the first ``put``; a queue that never overflowed touches no disk.
    ``depth`` is the number of records not yet read.
    """

    def __init__(self, path: str, *, max_bytes_per_file: int, max_record_size: int,
                 sync_every: int, sync_timeout: float) -> None:
        self.path = path
        self.max_bytes_per_file = max_bytes_per_file
        self.max_record_size = max_record_size
        self.sync_every = sync_every
        self.sync_timeout = sync_timeout
        self.depth = 0
        #: segment number -> records written to it (oldest first)
        self._segments: dict[int, int] = {}
        self._read_segment = 1
        self._read_consumed = 0  # records read from the read segment
        self._read_fd: int | None = None
        self._buffer = b""  # bytes of the read segment from _buffer_offset on
        self._buffer_offset = 0
        self._pos = 0  # next record in _buffer
        self._write_segment = 1
        self._write_offset = 0
        self._write_fd: int | None = None
        self._changes = 0  # records written or read since the last sync
        self._written = 0  # records written since the last sync
        self._last_sync = time.monotonic()
        if os.path.isdir(path):
            self._recover()

    # ---------------------------------------------------------------- writing

    def put(self, records: list[bytes]) -> None:
        """Append ``records``; on OSError (disk full...) no partial record is left behind."""
        if not records:
            return
        if self._write_fd is None:
            self._open_writer()
        limit = self.max_bytes_per_file
        header = HEADER.pack
        crc32 = zlib.crc32
        parts: list[bytes] = []
        size = self._write_offset
        count = 0
        for record in records:
            if size >= limit and count:
                self._write(parts, count)
                parts, count = [], 0
            if size >= limit:
                self._rotate()
                size = 0
            parts.append(header(len(record), crc32(record)))
            parts.append(record)
            size += HEADER.size + len(record)
            count += 1
        self._write(parts, count)
        if self._changes >= self.sync_every:
            self.sync()

    def _write(self, parts: list[bytes], count: int) -> None:
        data = b"".join(parts)
        fd = self._write_fd
        assert fd is not None  # put() opened the segment
        written = 0
        try:
            while written < len(data):
                written += os.write(fd, data[written:])
        except OSError:
            if written:  # never leave half a batch behind the last whole record
                os.ftruncate(fd, self._write_offset)
            raise
        self._write_offset += len(data)
        segment = self._write_segment
        self._segments[segment] = self._segments.get(segment, 0) + count
        self.depth += count
        self._changes += count
        self._written += count

    def _open_writer(self) -> None:
        os.makedirs(self.path, exist_ok=True)
        path = os.path.join(self.path, segment_name(self._write_segment))
        self._write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._segments.setdefault(self._write_segment, 0)

    def _rotate(self) -> None:
        """Start the next segment (the finished one is fsynced first, as go-diskqueue does)."""
        if self._write_fd is not None:
            os.fsync(self._write_fd)
            os.close(self._write_fd)
            self._write_fd = None
        self._write_segment += 1
        self._write_offset = 0
        self._open_writer()

    # ---------------------------------------------------------------- reading

    def read(self, limit: int) -> list[bytes]:
        """Up to ``limit`` records, oldest first (fewer only when the queue runs out)."""
        out: list[bytes] = []
        want = min(limit, self.depth)
        unpack = HEADER.unpack_from
        crc32 = zlib.crc32
        max_size = self.max_record_size
        while len(out) < want:
            buffer, pos, end = self._buffer, self._pos, len(self._buffer)
            before = len(out)
            corrupt = False
            while len(out) < want and pos + 8 <= end:
                length, crc = unpack(buffer, pos)
                stop = pos + 8 + length
                if length > max_size:
                    corrupt = True
                    break
                if stop > end:
                    break
                record = buffer[pos + 8:stop]
                if crc32(record) != crc:
                    corrupt = True
                    break
                out.append(record)
                pos = stop
            self._pos = pos
            taken = len(out) - before
            self._read_consumed += taken
            self.depth -= taken
            self._changes += taken
            if len(out) < want and (corrupt or not self._fill()):
                if not self._next_segment(corrupt):
                    break
        if self._changes >= self.sync_every:
            self.sync()
        return out

    def _fill(self) -> bool:
        """Read more of the read segment; False at its end."""
        if self._read_fd is None:
            path = os.path.join(self.path, segment_name(self._read_segment))
            try:
                self._read_fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                return False
        rest = self._buffer[self._pos:]
        file_offset = self._buffer_offset + len(self._buffer)
        need = READ_CHUNK
        if len(rest) >= HEADER.size:
            need = max(need, HEADER.unpack_from(rest)[0] + HEADER.size - len(rest))
        data = os.pread(self._read_fd, need, file_offset)
        if not data:
            return False
        self._buffer_offset = file_offset - len(rest)
        self._buffer = rest + data
        self._pos = 0
        return True

    def _next_segment(self, corrupt: bool) -> bool:
        """The read segment is done (or corrupt from here on): move to the next; False if none."""
        segment = self._read_segment
        if segment == self._write_segment:
            if not corrupt:
                if self.depth:  # the files hold fewer records than counted (changed behind us)
                    log.error("disk queue %s: %d records missing", self.path, self.depth)
                    self.depth = 0
                return False
            self._rotate()  # keep writing in a fresh segment; skip the rest of this one
        lost = self._segments.pop(segment, 0) - self._read_consumed
        if lost > 0:
            log.error("disk queue %s: segment %d is corrupt at offset %d; skipped %d records",
                      self.path, segment, self._buffer_offset + self._pos, lost)
            self.depth -= lost
        self._close_reader()
        try:
            os.unlink(os.path.join(self.path, segment_name(segment)))
        except FileNotFoundError:
            pass
        self._read_segment = min(self._segments) if self._segments else self._write_segment
        self._read_consumed = 0
        self._buffer_offset = 0
        return True

    def _close_reader(self) -> None:
        if self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None
        self._buffer = b""
        self._pos = 0

    # ---------------------------------------------------------------- syncing and state

    def sync(self) -> None:
        """fsync the segment being written and save the positions (once the queue has files).

        After reads alone the positions are saved without fsync: losing them to a power cut only
        means reading those records again (at least once, as promised)."""
        durable = self._written > 0
        self._changes = self._written = 0
        self._last_sync = time.monotonic()
        if not os.path.isdir(self.path):
            return
        if durable and self._write_fd is not None:
            os.fsync(self._write_fd)
        state = {
            "format": _FORMAT,
            "read": [self._read_segment, self._buffer_offset + self._pos, self._read_consumed],
            "write": [self._write_segment, self._write_offset],
            "segments": [[number, count] for number, count in self._segments.items()],
        }
        tmp = os.path.join(self.path, STATE_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, json.dumps(state).encode())
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(self.path, STATE_FILE))

    def maybe_sync(self) -> None:
        """Sync when something changed and ``sync_timeout`` passed since the last sync."""
        if self._changes and time.monotonic() - self._last_sync >= self.sync_timeout:
            self.sync()

    def close(self) -> None:
        """Sync and release the files (the queue stays on disk for the next start)."""
        if self._changes or self._write_fd is not None:
            self.sync()
        self._close_reader()
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None

    def empty(self) -> None:
        """Drop every record (the segment files go)."""
        self._close_files()
        if os.path.isdir(self.path):
            for name in os.listdir(self.path):
                if name.endswith(SEGMENT_SUFFIX):
                    os.unlink(os.path.join(self.path, name))
        next_segment = self._write_segment + 1
        self.depth = 0
        self._segments = {}
        self._read_segment = self._write_segment = next_segment
        self._read_consumed = self._buffer_offset = self._write_offset = 0
        self.sync()

    def delete(self) -> None:
        """Remove the queue and its directory."""
        self._close_files()
        shutil.rmtree(self.path, ignore_errors=True)
        self.depth = 0
        self._segments = {}

    def _close_files(self) -> None:
        self._close_reader()
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None

    # ---------------------------------------------------------------- opening an existing queue

    def _recover(self) -> None:
        numbers = sorted(int(name[:-len(SEGMENT_SUFFIX)]) for name in os.listdir(self.path)
                         if name.endswith(SEGMENT_SUFFIX) and name[:-len(SEGMENT_SUFFIX)].isdigit())
        state = self._load_state()
        read_offset = consumed = 0
        counts: dict[int, int] = {}  # records known from the state
        scan_from = {number: 0 for number in numbers}  # segments (partly) unknown: scan from here
        if state is not None:
            read_segment = state["read"][0]
            for number in [n for n in numbers if n < read_segment]:  # read, not yet unlinked
                os.unlink(os.path.join(self.path, segment_name(number)))
                numbers.remove(number)
                del scan_from[number]
            if numbers and numbers[0] == read_segment:
                read_offset, consumed = state["read"][1:]
            write_segment, write_offset = state["write"]
            for number, count in state["segments"]:
                if number in scan_from and number <= write_segment:
                    counts[number] = count
                    if number < write_segment:
                        del scan_from[number]
                    else:
                        scan_from[number] = write_offset
        for number, start in scan_from.items():
            added, valid_end, size = self._scan_segment(number, start)
            if valid_end is None:  # shorter than the state says: count it all again
                added, valid_end, size = self._scan_segment(number, 0)
                assert valid_end is not None  # a scan from 0 always ends somewhere
                counts[number] = 0
                if number == numbers[0]:
                    read_offset = consumed = 0
            counts[number] = counts.get(number, 0) + added
            if valid_end < size and number == numbers[-1]:
                log.warning("disk queue %s: cut a torn tail of %d bytes off segment %d",
                            self.path, size - valid_end, number)
                os.truncate(os.path.join(self.path, segment_name(number)), valid_end)
        if not numbers:
            return
        self._segments = {number: counts[number] for number in numbers}
        self._read_segment = numbers[0]
        self._read_consumed = consumed
        self._buffer_offset = read_offset
        self._write_segment = numbers[-1]
        self._write_offset = os.path.getsize(os.path.join(self.path, segment_name(numbers[-1])))
        self.depth = max(0, sum(self._segments.values()) - consumed)

    def _scan_segment(self, number: int, start: int) -> tuple[int, int | None, int]:
        """(whole records from ``start``, where they end, file size); end None if ``start`` > size.

        Reads a chunk at a time, so a rescan after a crash stays within a bounded memory."""
        count, carry, offset = 0, b"", start
        with open(os.path.join(self.path, segment_name(number)), "rb") as segment:
            size = os.fstat(segment.fileno()).st_size
            if start > size:
                return 0, None, size
            segment.seek(start)
            while True:
                chunk = segment.read(READ_CHUNK * 4)
                if not chunk:
                    return count, offset, size
                data = carry + chunk
                added, end, corrupt = scan_records(data, 0, self.max_record_size)
                count += added
                offset += end
                if corrupt:
                    return count, offset, size
                carry = data[end:]

    def _load_state(self) -> dict | None:
        try:
            with open(os.path.join(self.path, STATE_FILE), "rb") as handle:
                state = json.loads(handle.read())
            segments = [(int(n), int(c)) for n, c in state["segments"]]
            read = [int(v) for v in state["read"]]
            write = [int(v) for v in state["write"]]
            if state.get("format") != _FORMAT or len(read) != 3 or len(write) != 2:
                raise ValueError("unknown format")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("disk queue %s: unreadable %s (%s); scanning the segments",
                        self.path, STATE_FILE, error)
            return None
        return {"segments": segments, "read": read, "write": write}
