"""The nsq-replay checkpoint: which records of which file nsqd acknowledged.

Publishing keeps several batches in flight, so acknowledgements arrive out of order; the
checkpoint therefore stores, per input file, the *set* of acknowledged record numbers as merged
``[start, stop)`` ranges (normally a single range growing from 0) plus whether the whole file is
done. A rerun with the same checkpoint skips exactly those records: nothing acknowledged is sent
twice. The file is rewritten atomically (temporary file + rename) after acknowledgements, at most
once per event-loop iteration.

Format (JSON)::

    {"version": 1, "files": {"/abs/path.log.gz": {"acked": [[0, 52000]], "complete": false}}}

An empty file (what ``--checkpoint "$(mktemp)"`` gives) is a fresh checkpoint. A file that is
not a checkpoint is a usage error (exit 2) and is never overwritten.
"""

from __future__ import annotations

import json
import os
from bisect import bisect_right
from typing import Iterable

from nsqcli.cli.exit_codes import ExitStatus, ToolError

VERSION = 1


class CheckpointError(ToolError):
    """The checkpoint file cannot be read (a usage error: exit 2) or written (exit 1); the
    message names it."""


class RangeSet:
    """A set of non-negative integers kept as sorted, merged, half-open ``[start, stop)`` ranges."""

    __slots__ = ("starts", "stops")

    def __init__(self, ranges: Iterable[Iterable[int]] = ()) -> None:
        self.starts: list[int] = []
        self.stops: list[int] = []
        for start, stop in ranges:
            self.add(int(start), int(stop))

    def add(self, start: int, stop: int) -> None:
        if stop <= start:
            return
        starts, stops = self.starts, self.stops
        # fast path: extends (or follows) the last range, the common in-order case
        if not starts or start > stops[-1]:
            starts.append(start)
            stops.append(stop)
            return
        if start >= starts[-1]:
            stops[-1] = max(stops[-1], stop)
            return
        i = bisect_right(stops, start - 1)  # first range that ends at or after start
        j = bisect_right(starts, stop)  # ranges before j start at or before stop
        if i < j:
            start = min(start, starts[i])
            stop = max(stop, stops[j - 1])
        starts[i:j] = [start]
        stops[i:j] = [stop]

    def add_numbers(self, numbers: Iterable[int]) -> None:
        run_start: int | None = None  # the run being collected, [run_start, run_stop)
        run_stop = 0
        for n in numbers:
            if run_start is not None and run_stop == n:
                run_stop += 1
                continue
            if run_start is not None:
                self.add(run_start, run_stop)
            run_start, run_stop = n, n + 1
        if run_start is not None:
            self.add(run_start, run_stop)

    def __contains__(self, n: int) -> bool:
        i = bisect_right(self.starts, n) - 1
        return i >= 0 and n < self.stops[i]

    def overlaps(self, start: int, stop: int) -> bool:
        i = bisect_right(self.starts, stop - 1) - 1
        return i >= 0 and self.stops[i] > start

    def covers(self, start: int, stop: int) -> bool:
        i = bisect_right(self.starts, start) - 1
        return i >= 0 and self.stops[i] >= stop

    def count(self) -> int:
        return sum(b - a for a, b in zip(self.starts, self.stops))

    def ranges(self) -> list[list[int]]:
        return [[a, b] for a, b in zip(self.starts, self.stops)]

    def __bool__(self) -> bool:
        return bool(self.starts)

    def __repr__(self) -> str:
        return f"RangeSet({self.ranges()})"


def file_key(path: str) -> str:
    """How a file is named in the checkpoint: its real absolute path (``-`` for stdin)."""
    return "-" if path == "-" else os.path.realpath(path)


class Checkpoint:
    """Acknowledged records per file; :meth:`save` writes them (see the module docstring)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.acked: dict[str, RangeSet] = {}
        self.complete: set[str] = set()
        self.dirty = False

    @classmethod
    def load(cls, path: str | None) -> "Checkpoint":
        checkpoint = cls(path)
        if path is None or not os.path.exists(path):
            return checkpoint
        try:
            with open(path, "rb") as handle:
                text = handle.read()
            if not text:
                return checkpoint  # an empty file: nothing acknowledged yet
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError(f"unsupported checkpoint version {data.get('version')!r}"
                                 if isinstance(data, dict) else "not a JSON object")
            for key, entry in data.get("files", {}).items():
                checkpoint.acked[key] = RangeSet(entry.get("acked", ()))
                if entry.get("complete"):
                    checkpoint.complete.add(key)
        except OSError as exc:
            raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}",
                                  ExitStatus.USAGE) from None
        except (ValueError, TypeError, AttributeError, ArithmeticError, RecursionError) as exc:
            raise CheckpointError(
                f"checkpoint {path} is not a valid nsq-replay checkpoint ({exc}); it was left "
                "untouched: give an empty or new file to start afresh", ExitStatus.USAGE) from None
        return checkpoint

    def ranges(self, key: str) -> RangeSet:
        ranges = self.acked.get(key)
        if ranges is None:
            ranges = self.acked[key] = RangeSet()
        return ranges

    def is_complete(self, key: str) -> bool:
        return key in self.complete

    def acknowledge(self, key: str, start: int, stop: int) -> None:
        self.ranges(key).add(start, stop)
        self.dirty = True

    def acknowledge_numbers(self, key: str, numbers: Iterable[int]) -> None:
        self.ranges(key).add_numbers(numbers)
        self.dirty = True

    def mark_complete(self, key: str) -> None:
        self.complete.add(key)
        self.dirty = True

    def to_json(self) -> dict:
        keys = sorted(set(self.acked) | self.complete)
        return {"version": VERSION, "files": {
            key: {"acked": self.ranges(key).ranges(), "complete": key in self.complete}
            for key in keys}}

    def save(self) -> None:
        """Write atomically when something changed (no-op without a path)."""
        if self.path is None or not self.dirty:
            return
        tmp = f"{self.path}.tmp{os.getpid()}"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(self.to_json(), handle, separators=(",", ":"))
            os.replace(tmp, self.path)
        except OSError as exc:
            raise CheckpointError(f"cannot write checkpoint {self.path}: {exc.strerror}") from None
        self.dirty = False
