"""Helpers building archives byte for byte as the Go nsq_to_file writes them (for tests)."""

import struct
import zlib


def go_gzip_member(data: bytes, level: int = 6) -> bytes:
    """One gzip member as Go's compress/gzip writes it: no name, mtime 0, XFL 0, OS 255."""
    header = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = c.compress(data) + c.flush()
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def go_archive(batches: list[list[bytes]]) -> bytes:
    """A Go nsq_to_file --gzip file: one member per sync, plus the empty member its Close adds."""
    members = [go_gzip_member(b"".join(body + b"\n" for body in batch)) for batch in batches]
    return b"".join(members) + go_gzip_member(b"")
