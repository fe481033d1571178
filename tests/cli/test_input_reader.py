"""Record splitting across chunk boundaries (property-tested against bytes.split)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from nsqcli.pub.records import RecordSplitter


def split_in_chunks(data: bytes, delimiter: bytes, cuts: list[int]) -> list[bytes]:
    splitter = RecordSplitter(delimiter)
    records: list[bytes] = []
    start = 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
        records.extend(splitter.feed(data[start:cut]))
        start = cut
    last = splitter.finish()
    return records + ([last] if last else [])


def expected(data: bytes, delimiter: bytes) -> list[bytes]:
    parts = data.split(delimiter)
    if parts and parts[-1] == b"":
        parts.pop()
    return parts


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"\n", b"\0", b"ab", b"\r\n", b"xyz"]),
       st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_chunking_gives_the_records_of_one_split(data, delimiter, cuts):
    assert split_in_chunks(data, delimiter, cuts) == expected(data, delimiter)


def test_delimiter_straddling_two_chunks():
    splitter = RecordSplitter(b"<>")
    assert splitter.feed(b"one<") == []
    assert splitter.feed(b">two<") == [b"one"]
    assert splitter.feed(b">") == [b"two"]
    assert splitter.finish() == b""


def test_a_long_record_is_joined_once():
    splitter = RecordSplitter(b"\n")
    for _ in range(1000):
        assert splitter.feed(b"x" * 1000) == []
    assert splitter.feed(b"\nend") == [b"x" * 1_000_000]
    assert splitter.finish() == b"end"


def test_delimiter_spread_over_one_byte_chunks():
    splitter = RecordSplitter(b"xyz")
    out = []
    for byte in b"axyzb":
        out += splitter.feed(bytes([byte]))
    assert out == [b"a"] and splitter.finish() == b"b"
