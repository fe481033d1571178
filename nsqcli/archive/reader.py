"""Reading archives for nsq-replay: plain or gzip (from content), raw or jsonl (detected).

Files are read in large blocks; gzip input may be several concatenated members (as nsq-to-file
and the Go ``nsq_to_file`` write it). A final member cut short (the writer was killed) yields the
complete lines it holds and sets :attr:`ArchiveReader.truncated`. Records are numbered per file
from 0, counting non-empty lines only (NSQ has no empty messages): that number is what the replay
checkpoint records.
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from nsqcli.archive.format import (
    Record, RecordError, check_format, decode_jsonl, decode_jsonl_many, detect_format, is_gzip,
)

READ_SIZE = 64 * 1024  # bigger blocks cost memory (each is decompressed, copied and split) for no speed
# Format detection wants the whole first line; give up looking for its end after this much.
DETECT_LIMIT = 16 * 1024 * 1024


class ArchiveReadError(ValueError):
    """A malformed record or a corrupt file; the message names the file (and line)."""


@dataclass(slots=True)
class Chunk:
    """Consecutive records of one file: numbers ``start`` .. ``start + count - 1``.

    ``bodies[i]`` is record ``start + i`` -- unless bad records were skipped, then ``numbers``
    lists the record number of each body. ``records`` (jsonl only) are parallel to ``bodies``.
    """

    start: int
    count: int
    bodies: list[bytes]
    records: list[Record] | None = None
    numbers: list[int] | None = None
    bad: list[str] = field(default_factory=list)  # "file:line: reason" of skipped records

    def number(self, i: int) -> int:
        return self.start + i if self.numbers is None else self.numbers[i]


def open_input(path: str) -> BinaryIO:
    if path == "-":
        try:  # a reader of our own: sys.stdin's would be locked by the reading thread at exit
            return open(sys.stdin.fileno(), "rb", closefd=False)  # noqa: SIM115
        except (AttributeError, OSError, ValueError):  # no real stdin (tests): use it as is
            return sys.stdin.buffer
    return open(path, "rb")  # noqa: SIM115 - closed by ArchiveReader.close


class _Decompressor:
    """Streaming gunzip of concatenated members, each checked against its CRC and size."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(31)
        self.in_member = False  # a member has started and not ended yet
        self._carry = b""  # the first byte of a next member, cut by a block boundary

    def feed(self, data: bytes, limit: int) -> Iterator[bytes]:
        """Decompressed pieces of at most ``limit`` bytes (memory stays bounded whatever the
        compression ratio)."""
        if self._carry:
            data, self._carry = self._carry + data, b""
        while data:
            if not self.in_member:
                if not data.strip(b"\x00"):
                    return  # zero padding after the last member is tolerated
                if len(data) < 2:
                    self._carry = data
                    return
                if not data.startswith(b"\x1f\x8b"):
                    raise zlib.error("trailing garbage after a gzip member")
                self._d = zlib.decompressobj(31)
                self.in_member = True
            d = self._d
            out = d.decompress(data, limit)
            if out:
                yield out
            if d.eof:
                self.in_member = False
                data = d.unused_data
            else:
                data = d.unconsumed_tail

    @property
    def incomplete(self) -> bool:
        return self.in_member or bool(self._carry)


class ArchiveReader:
    """Iterate one archive (a path, or ``-`` for stdin) as :class:`Chunk` objects."""

    def __init__(self, path: str, fmt: str | None = None, skip_bad: bool = False,
                 read_size: int = READ_SIZE) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else path
        self.format = check_format(fmt) if fmt else None
        self.skip_bad = skip_bad
        self.read_size = read_size
        self.gzip: bool | None = None
        self.truncated = False
        self.bytes_read = 0  # bytes of the file consumed (compressed bytes for gzip)
        self._stream: BinaryIO | None = None

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None and self.path != "-":
            stream.close()

    def __enter__(self) -> "ArchiveReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- decompressed blocks -----------------------------------------------------------------

    def _blocks(self) -> Iterator[bytes]:
        try:
            self._stream = stream = open_input(self.path)
        except OSError as exc:
            raise ArchiveReadError(f"{self.name}: {exc.strerror or exc}") from None
        # a pipe: whatever has arrived (a trickle is replayed as it comes), a file: whole blocks
        read = stream.read1 if self.path == "-" and hasattr(stream, "read1") else stream.read
        first = read(self.read_size)
        while 0 < len(first) < 3 and read is not stream.read:  # enough to tell gzip apart
            more = read(self.read_size)
            if not more:
                break
            first += more
        self.bytes_read += len(first)
        self.gzip = is_gzip(first)
        if not self.gzip:
            data = first
            while data:
                yield data
                data = read(self.read_size)
                self.bytes_read += len(data)
            return
        gunzip = _Decompressor()
        data = first
        while data:
            pieces = gunzip.feed(data, self.read_size)
            while True:
                try:
                    piece = next(pieces, None)
                except zlib.error as exc:
                    raise ArchiveReadError(f"{self.name}: corrupt gzip data near byte "
                                           f"{self.bytes_read}: {exc}") from None
                if piece is None:
                    break
                yield piece
            data = read(self.read_size)
            self.bytes_read += len(data)
        if gunzip.incomplete:
            self.truncated = True

    # -- records -----------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        """Chunks of records in file order (raises :class:`ArchiveReadError` on a bad record
        unless ``skip_bad``)."""
        number = 0  # next record number
        line_no = 0  # lines consumed before the current block (for error messages)
        rest = b""
        blocks = self._blocks()
        fmt = self.format
        for block in blocks:
            data = rest + block if rest else block
            if fmt is None:
                if b"\n" not in data and len(data) < DETECT_LIMIT:
                    rest = data
                    continue
                fmt = self.format = detect_format(data[:DETECT_LIMIT])
            lines = data.split(b"\n")
            rest = lines.pop()
            chunk = self._chunk(lines, fmt, number, line_no)
            line_no += len(lines)
            if chunk.count:
                number += chunk.count
                yield chunk
        if fmt is None:
            fmt = self.format = detect_format(rest)
        if rest and not (self.truncated and fmt == "raw"):
            # A last line without a newline is a whole record -- unless the gzip stream was cut
            # short, where it is most likely a partial write.
            chunk = self._chunk([rest], fmt, number, line_no)
            if chunk.count:
                yield chunk

    def _chunk(self, lines: list[bytes], fmt: str, start: int, line_no: int) -> Chunk:
        if fmt == "raw":
            if b"" in lines:
                lines = [line for line in lines if line]
            return Chunk(start, len(lines), lines)
        return self._jsonl_chunk(lines, start, line_no)

    def _jsonl_chunk(self, lines: list[bytes], start: int, line_no: int) -> Chunk:
        if not any(not line.strip() for line in lines):
            decoded = decode_jsonl_many(lines)
            if decoded is not None:
                if all(r.body for r in decoded):
                    return Chunk(start, len(lines), [r.body for r in decoded], decoded,
                                 list(range(start, start + len(lines))))
        bodies: list[bytes] = []
        records: list[Record] = []
        numbers: list[int] = []
        bad: list[str] = []
        number = start
        for offset, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = decode_jsonl(line)
            except RecordError as exc:
                where = f"{self.name}:{line_no + offset + 1}: {exc}"
                if not self.skip_bad:
                    raise ArchiveReadError(where) from None
                bad.append(where)
            else:
                if record.body:  # nsqd refuses empty bodies: nothing to replay
                    bodies.append(record.body)
                    records.append(record)
                    numbers.append(number)
            number += 1
        return Chunk(start, number - start, bodies, records, numbers, bad)
