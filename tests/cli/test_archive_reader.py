"""ArchiveReader: gzip from content, concatenated members, truncation, raw/jsonl, numbering."""

import gzip
import io
import sys

import pytest

from nsqcli.archive.format import encode_jsonl
from nsqcli.archive.reader import ArchiveReader, ArchiveReadError

from archive_samples import go_archive


def read_all(path, **kw):
    reader = ArchiveReader(str(path), **kw)
    with reader:
        chunks = list(reader.chunks())
    bodies, numbers = [], []
    for chunk in chunks:
        bodies.extend(chunk.bodies)
        numbers.extend(chunk.number(i) for i in range(len(chunk.bodies)))
    return reader, chunks, bodies, numbers


@pytest.mark.parametrize("read_size", [1, 7, 1 << 20])
def test_raw_plain_numbering_and_blank_lines(tmp_path, read_size):
    p = tmp_path / "a.log"
    p.write_bytes(b"one\ntwo\n\nthree\nlast-without-newline")
    reader, chunks, bodies, numbers = read_all(p, read_size=read_size)
    assert bodies == [b"one", b"two", b"three", b"last-without-newline"]
    assert numbers == [0, 1, 2, 3]
    assert reader.format == "raw" and reader.gzip is False
    assert reader.bytes_read == p.stat().st_size


@pytest.mark.parametrize("read_size", [3, 1 << 20])
def test_go_gzip_archive_with_concatenated_members(tmp_path, read_size):
    p = tmp_path / "t.host-000000.2020-06-30_18.log.gz"
    batches = [[b"a1", b"a2"], [b"b1"], [b"\xffbinary", b"c2"]]
    p.write_bytes(go_archive(batches))
    reader, _, bodies, _ = read_all(p, read_size=read_size)
    assert bodies == [b for batch in batches for b in batch]
    assert reader.gzip is True and reader.truncated is False


def test_gzip_detected_from_content_not_name(tmp_path):
    p = tmp_path / "no-extension"
    p.write_bytes(gzip.compress(b"x\ny\n"))
    assert read_all(p)[2] == [b"x", b"y"]


def test_truncated_gzip_keeps_complete_lines(tmp_path):
    p = tmp_path / "cut.gz"
    whole = gzip.compress(b"good1\ngood2\n") + gzip.compress(b"partial1\npartial2\nhalf-writ" * 50)
    p.write_bytes(whole[:-30])
    reader, _, bodies, _ = read_all(p)
    assert reader.truncated is True
    assert bodies[:2] == [b"good1", b"good2"]
    assert all(not b.startswith(b"half") or b == b"half-writpartial1" for b in bodies)
    assert not any(b.endswith(b"half-wri") for b in bodies)


def test_corrupt_gzip_is_an_error_naming_the_file(tmp_path):
    p = tmp_path / "bad.gz"
    data = bytearray(gzip.compress(b"hello world\n" * 100))
    data[-6] ^= 0xFF  # break the CRC
    p.write_bytes(bytes(data))
    with pytest.raises(ArchiveReadError, match="bad.gz: corrupt gzip data"):
        read_all(p)


def test_jsonl_detected_with_line_numbers_on_errors(tmp_path):
    p = tmp_path / "x.jsonl"
    good = encode_jsonl("t", b"0" * 16, 5, 1, b"a\nb")
    p.write_bytes(good + b"\n" + b"{oops\n" + encode_jsonl("u", b"1" * 16, 6, 1, b"\x00"))
    with pytest.raises(ArchiveReadError, match=r"x\.jsonl:3: invalid JSON"):
        read_all(p)
    reader, chunks, bodies, numbers = read_all(p, skip_bad=True)
    assert reader.format == "jsonl"
    assert bodies == [b"a\nb", b"\x00"]
    assert numbers == [0, 2]  # the bad record keeps its number
    assert [c.records[0].topic for c in chunks] == ["t"]
    assert sum(len(c.bad) for c in chunks) == 1 and "x.jsonl:3" in chunks[0].bad[0]


def test_forced_format_reads_jsonl_lines_as_raw(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(encode_jsonl("t", b"0" * 16, 5, 1, b"body"))
    assert read_all(p, fmt="raw")[2] == [p.read_bytes().rstrip(b"\n")]


def test_stdin(monkeypatch):
    fake = io.TextIOWrapper(io.BytesIO(gzip.compress(b"s1\ns2\n")))
    monkeypatch.setattr(sys, "stdin", fake)
    reader, _, bodies, _ = read_all("-")
    assert bodies == [b"s1", b"s2"] and reader.name == "<stdin>"


def test_missing_file(tmp_path):
    with pytest.raises(ArchiveReadError, match="nope.log: No such file"):
        read_all(tmp_path / "nope.log")


def test_decompressed_blocks_stay_bounded(tmp_path, monkeypatch):
    import nsqcli.archive.reader as archive_reader

    p = tmp_path / "ratio.gz"
    p.write_bytes(gzip.compress(b"x" * 99 + b"\n") * 3 + gzip.compress((b"y" * 99 + b"\n") * 20000))
    sizes = []
    real = archive_reader.ArchiveReader._chunk

    def spy(self, lines, fmt, start, line_no):
        sizes.append(sum(map(len, lines)))
        return real(self, lines, fmt, start, line_no)

    monkeypatch.setattr(archive_reader.ArchiveReader, "_chunk", spy)
    _, _, bodies, numbers = read_all(p, read_size=4096)
    assert len(bodies) == 20003 and numbers[-1] == 20002
    assert max(sizes) <= 2 * 4096  # a 2 MB member never came out in one piece
