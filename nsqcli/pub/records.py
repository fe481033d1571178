"""Reading delimited records from stdin/files without blocking the event loop.

A daemon thread reads large chunks (so a blocked ``read`` on a terminal never keeps the process
alive after a signal) and hands them to the loop through a small bounded queue (backpressure:
the thread stops reading while the publisher is behind). :func:`records_from` splits chunks on a
delimiter of any length; a final record without a trailing delimiter is returned whole.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import IO, Any, AsyncIterator, Callable, cast

CHUNK_SIZE = 128 * 1024
QUEUE_CHUNKS = 2
_EOF = None


class SourceError(OSError):
    """A source file could not be opened or read; names the file."""


def open_source(path: str) -> IO[bytes]:
    if path == "-":
        stdin = sys.stdin  # a stand-in stdin without a binary buffer (a test's) is used as it is
        return cast("IO[bytes]", getattr(stdin, "buffer", stdin))
    try:
        return open(path, "rb")
    except OSError as exc:
        raise SourceError(exc.errno, f"cannot read {path}: {exc.strerror}") from None


def _raw_reader(stream: IO[bytes]) -> Callable[[int], bytes]:
    """os.read on the file descriptor when there is one: a read blocked in our thread then
    holds no lock of the io module that the interpreter needs at exit (stdin on a terminal)."""
    import os

    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return getattr(stream, "read1", None) or stream.read
    return lambda size: os.read(fd, size)


class ChunkReader:
    """Chunks of one binary stream, read in a daemon thread; ``async for chunk in reader``."""

    def __init__(self, stream: IO[bytes], name: str, chunk_size: int = CHUNK_SIZE) -> None:
        self.name = name
        self._stream = stream
        self._read = _raw_reader(stream)
        self._chunk_size = chunk_size
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._slots = threading.Semaphore(QUEUE_CHUNKS)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"read {name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopped.is_set():
                self._slots.acquire()
                if self._stopped.is_set():
                    break
                chunk = self._read(self._chunk_size)
                if not chunk:
                    break
                self._loop.call_soon_threadsafe(self._queue.put_nowait, chunk)
            self._loop.call_soon_threadsafe(self._queue.put_nowait, _EOF)
        except OSError as exc:
            error = SourceError(exc.errno, f"cannot read {self.name}: {exc.strerror or exc}")
            self._loop.call_soon_threadsafe(self._queue.put_nowait, error)
        except RuntimeError:  # the loop closed under us: the process is exiting
            pass

    def stop(self) -> None:
        """Stop reading; a consumer waiting for the next chunk sees the end (loop thread only)."""
        if not self._stopped.is_set():
            self._stopped.set()
            self._slots.release()
            self._queue.put_nowait(_EOF)

    def __aiter__(self) -> "ChunkReader":
        return self

    async def __anext__(self) -> bytes:
        item = await self._queue.get()
        self._slots.release()
        if item is _EOF:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item


class RecordSplitter:
    """Chunks in, complete records out; a record spanning many chunks is joined once (no
    quadratic re-copying of a long unfinished record), and a multi-byte delimiter may straddle
    two chunks."""

    def __init__(self, delimiter: bytes) -> None:
        if not delimiter:
            raise ValueError("the delimiter must not be empty")
        self.delimiter = delimiter
        self._pieces: list[bytes] = []  # the unfinished record, in pieces

    def feed(self, chunk: bytes) -> list[bytes]:
        delimiter = self.delimiter
        pieces = self._pieces
        if not chunk:
            return []
        if pieces:
            width = len(delimiter) - 1  # bytes of the unfinished record a delimiter could start in
            edge = b"".join(pieces[-width:])[-width:] if width else b""
            if delimiter not in edge + chunk[:width] and delimiter not in chunk:
                pieces.append(chunk)
                return []
            chunk = b"".join(pieces) + chunk
            pieces.clear()
        parts = chunk.split(delimiter)
        rest = parts.pop()
        if rest:
            pieces.append(rest)
        return parts

    def finish(self) -> bytes:
        """The unfinished record at the end of the input (may be empty)."""
        last = b"".join(self._pieces)
        self._pieces.clear()
        return last


async def records_from(
    paths: list[str], delimiter: bytes, shutdown: Any = None, stdin_prefix: bytes = b""
) -> AsyncIterator[list[bytes]]:
    """Lists of records from each source in turn, split on ``delimiter``.

    ``shutdown`` (a :class:`nsqcli.cli.runner.Shutdown`) ends the input at once, even while a read
    is blocked (the partial record read so far is dropped). ``stdin_prefix`` is stdin data that
    was already read (it comes first).
    """
    current: list[ChunkReader] = []

    def stop() -> bool:
        return bool(shutdown is not None and shutdown.requested)

    def stop_current() -> None:
        if current:
            current[-1].stop()

    if shutdown is not None:
        shutdown.add_callback(stop_current)
    for path in paths:
        stream = open_source(path)
        reader = ChunkReader(stream, "stdin" if path == "-" else path)
        current.append(reader)
        splitter = RecordSplitter(delimiter)
        if path == "-" and stdin_prefix:
            parts = splitter.feed(stdin_prefix)
            stdin_prefix = b""
            if parts:
                yield parts
        try:
            async for chunk in reader:
                parts = splitter.feed(chunk)
                if parts:
                    yield parts
                if stop():
                    return
            last = splitter.finish()
            if last and not stop():
                yield [last]  # a final record without a delimiter is a whole record
        finally:
            reader.stop()
            if path != "-":
                stream.close()
        if stop():
            return
