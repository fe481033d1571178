"""Stream transforms nsqd negotiates in IDENTIFY: snappy (framing format) and deflate (raw).

nsqd wraps its connection in golang/snappy's framed reader/writer or in a raw DEFLATE stream
(compress/flate, no zlib header) flushed after every write. Both directions switch at once.
"""

from __future__ import annotations

import zlib
from typing import Iterator, Protocol

from .errors import ProtocolError

_SNAPPY_STREAM_IDENTIFIER = b"\xff\x06\x00\x00sNaPpY"
_CHUNK_COMPRESSED = 0x00
_CHUNK_UNCOMPRESSED = 0x01
_CHUNK_PADDING = 0xFE
_CHUNK_STREAM_ID = 0xFF


class Codec(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def decompress(self, data: bytes) -> bytes: ...
    def decompress_pieces(self, data: bytes, limit: int) -> Iterator[bytes]: ...


class DeflateCodec:
    """Raw DEFLATE both ways; each compress() ends in a sync flush so the peer can read it now."""

    name = "deflate"

    def __init__(self, level: int = 6) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)

    def compress(self, data: bytes) -> bytes:
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._decompressor.decompress(data)
        except zlib.error as exc:
            raise ProtocolError(f"bad deflate stream: {exc}") from None

    def decompress_pieces(self, data: bytes, limit: int) -> Iterator[bytes]:
        """``decompress(data)`` in pieces of at most ``limit`` bytes (deflate inflates up to
        ~1000x: the caller checks each piece before the next one is inflated)."""
        decompressor = self._decompressor
        try:
            while True:
                piece = decompressor.decompress(data, limit)
                data = decompressor.unconsumed_tail
                if piece:
                    yield piece
                if not data and len(piece) < limit:
                    return
        except zlib.error as exc:
            raise ProtocolError(f"bad deflate stream: {exc}") from None


class SnappyCodec:
    """Snappy framing format (stream identifier, then CRC-checked chunks) both ways."""

    name = "snappy"

    def __init__(self) -> None:
        import cramjam  # python-snappy's engine; imported lazily so plain connections skip it

        self._cramjam = cramjam
        self._compressor = cramjam.snappy.Compressor()
        self._pending = bytearray()
        self._decompressor = cramjam.snappy.Decompressor()
        self._seen_identifier = False

    def compress(self, data: bytes) -> bytes:
        self._compressor.compress(data)
        return bytes(self._compressor.flush())

    def decompress(self, data: bytes) -> bytes:
        buf = self._pending
        buf += data
        pos = 0
        complete = 0
        while len(buf) - pos >= 4:
            chunk_type = buf[pos]
            length = int.from_bytes(buf[pos + 1:pos + 4], "little")
            if pos + 4 + length > len(buf):
                break
            if chunk_type == _CHUNK_STREAM_ID:
                if bytes(buf[pos:pos + 4 + length]) != _SNAPPY_STREAM_IDENTIFIER:
                    raise ProtocolError("bad snappy stream identifier")
                self._seen_identifier = True
            elif not self._seen_identifier:
                raise ProtocolError("snappy stream did not start with its identifier")
            elif chunk_type not in (_CHUNK_COMPRESSED, _CHUNK_UNCOMPRESSED) and chunk_type < 0x80 \
                    and chunk_type != _CHUNK_PADDING:
                raise ProtocolError(f"unknown unskippable snappy chunk type {chunk_type:#x}")
            pos += 4 + length
            complete = pos
        if not complete:
            return b""
        whole = bytes(buf[:complete])
        del buf[:complete]
        try:
            self._decompressor.decompress(_SNAPPY_STREAM_IDENTIFIER + whole
                                          if not whole.startswith(_SNAPPY_STREAM_IDENTIFIER)
                                          else whole)
            return bytes(self._decompressor.flush())
        except Exception as exc:  # cramjam raises its own DecompressionError
            raise ProtocolError(f"bad snappy stream: {exc}") from None

    def decompress_pieces(self, data: bytes, limit: int) -> Iterator[bytes]:
        """One piece: snappy expands a chunk at most ~20x, and a chunk holds <= 64 KiB."""
        piece = self.decompress(data)
        if piece:
            yield piece


def make_codec(kind: str, level: int = 6) -> Codec:
    if kind == "snappy":
        return SnappyCodec()
    if kind == "deflate":
        return DeflateCodec(level)
    raise ValueError(f"unknown compression {kind!r}")
