"""Input data for the workloads: message bodies, a file of lines, a gzip archive (cached per N, size)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

_CHUNK = 10_000


def bodies(n: int, size: int) -> Iterator[bytes]:
    """``n`` distinct bodies of ``size`` bytes (a zero-padded counter; never a newline)."""
    for i in range(n):
        yield b"%0*d" % (size, i)


def _write_lines(handle, n: int, size: int) -> None:
    chunk: list[bytes] = []
    for body in bodies(n, size):
        chunk.append(body)
        if len(chunk) == _CHUNK:
            handle.write(b"\n".join(chunk) + b"\n")
            chunk = []
    if chunk:
        handle.write(b"\n".join(chunk) + b"\n")


def lines_file(workdir: Path, n: int, size: int) -> Path:
    """A file of ``n`` newline-terminated lines of ``size`` bytes (nsq-pub's input)."""
    path = workdir / f"lines_{n}_{size}.txt"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            _write_lines(handle, n, size)
        tmp.rename(path)
    return path


def gzip_archive(workdir: Path, n: int, size: int) -> Path:
    """A gzip archive in nsq_to_file's raw format (body + newline), nsq-replay's input."""
    path = workdir / f"archive_{n}_{size}.log.gz"
    if not path.exists():
        tmp = workdir / f"archive_{n}_{size}.tmp"
        with gzip.open(tmp, "wb", compresslevel=6) as handle:
            _write_lines(handle, n, size)
        tmp.rename(path)
    return path


def count_lines(directory: Path) -> int:
    """Lines in every file under ``directory`` (gzip detected from the content)."""
    total = 0
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        with open(path, "rb") as raw:
            magic = raw.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rb") as handle:
            while True:
                block = handle.read(1 << 20)
                if not block:
                    break
                total += block.count(b"\n")
    return total


def newest_mtime(directory: Path) -> float:
    times = [p.stat().st_mtime for p in directory.rglob("*") if p.is_file()]
    return max(times) if times else 0.0
