"""Batches for :mod:`nsqcli.lib.publisher.engine`: records cut into MPUB commands within nsqd's limits.

Pure (no I/O): cutting a run of records into batches by count and MPUB body bytes, encoding
MPUB/DPUB commands with the protocol core, record numbering, and reading nsqd's size limits out
of its ``E_BAD_MESSAGE`` / ``E_BAD_BODY`` descriptions ("MPUB message too big 2000 > 1024").
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate
from typing import Iterator, Sequence

from nsqcli.lib.protocol import commands
from nsqcli.lib.protocol.constants import DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_MSG_SIZE

from .config import DEFAULT_BATCH_BYTES, DEFAULT_BATCH_SIZE

MPUB_OVERHEAD_PER_RECORD = 4  # the int32 length in front of each record
MPUB_BODY_HEADER = 4  # the int32 count

__all__ = [
    "Batch", "Limits", "Numbers", "cut_batches", "encode_batch", "join_numbers", "limit_from_error",
    "split_oversized",
]


class Numbers:
    """1-based input record numbers of a run of records: contiguous (``first``) or listed."""

    __slots__ = ("first", "listed")

    def __init__(self, first: int, listed: list[int] | None = None) -> None:
        self.first = first
        self.listed = listed

    def slice(self, start: int, stop: int) -> "Numbers":
        if self.listed is None:
            return Numbers(self.first + start)
        return Numbers(self.listed[start] if start < len(self.listed) else 0, self.listed[start:stop])

    def at(self, index: int) -> int:
        return self.first + index if self.listed is None else self.listed[index]

    def all(self, count: int) -> list[int]:
        return list(range(self.first, self.first + count)) if self.listed is None else list(self.listed)

    def sequence(self, count: int) -> Sequence[int]:
        """The numbers as handed to the publisher's callbacks: a range when contiguous."""
        return range(self.first, self.first + count) if self.listed is None else self.listed

    def append(self, number: int, count: int) -> None:
        """Add ``number`` after the ``count`` numbers held (staying contiguous when it follows)."""
        if self.listed is None:
            if self.first + count == number or count == 0:
                self.first = number - count
                return
            self.listed = self.all(count)
        self.listed.append(number)


class Limits:
    """nsqd's size limits as far as they are known, and the batch targets derived from them.

    The derived values (``msg_limit``, ``body_budget``, ``max_count``) are plain attributes,
    recomputed whenever a limit changes: they are read once per record.
    """

    def __init__(
        self,
        max_msg_size: int | None = None,
        max_body_size: int | None = None,
        batch_count: int = DEFAULT_BATCH_SIZE,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None:
        self.max_msg_size = max_msg_size or DEFAULT_MAX_MSG_SIZE
        # nsqd does not announce max-msg-size: until it is configured or learned from an
        # E_BAD_MESSAGE, records are not refused client-side (nsqd may allow more than 1 MiB)
        self.msg_size_known = bool(max_msg_size)
        self._max_body_size = max_body_size or DEFAULT_MAX_BODY_SIZE
        self._batch_count = max(1, batch_count)
        self.batch_bytes = max(1, batch_bytes)
        self._derive()

    def _derive(self) -> None:
        #: the record size checked client-side: the known max-msg-size, else no limit
        self.msg_limit = self.max_msg_size if self.msg_size_known else 1 << 62
        #: most record bytes (with their length prefixes) one MPUB may carry
        self.body_budget = min(self.batch_bytes, self._max_body_size - MPUB_BODY_HEADER)
        #: most records per MPUB; nsqd: count must be <= (max-body-size - 4) / 5
        self.max_count = max(1, min(self._batch_count,
                                    (self._max_body_size - MPUB_BODY_HEADER) // 5))

    @property
    def max_body_size(self) -> int:
        return self._max_body_size

    @max_body_size.setter
    def max_body_size(self, value: int) -> None:
        self._max_body_size = value
        self._derive()

    @property
    def batch_count(self) -> int:
        return self._batch_count

    @batch_count.setter
    def batch_count(self, value: int) -> None:
        self._batch_count = max(1, value)
        self._derive()

    def learn_msg_size(self, limit: int) -> bool:
        """Take nsqd's stated max-msg-size; False when it teaches nothing new."""
        if self.msg_size_known and limit >= self.max_msg_size:
            return False
        self.max_msg_size, self.msg_size_known = limit, True
        self._derive()
        return True


class Batch:
    """Records published together (one MPUB, or one DPUB per record) and their bookkeeping.

    Only the encoded commands are kept (not a second copy of the records): ``records`` decodes
    them again on the rare paths that need them (a re-cut, the failed-record sink).
    """

    __slots__ = ("count", "numbers", "commands", "pending", "failed", "failed_since", "parent",
                 "skipped")

    def __init__(self, count: int, numbers: Numbers, cmds: list[bytes]) -> None:
        self.count = count
        self.numbers = numbers
        self.commands = cmds  # one MPUB, or one DPUB per record
        self.pending = 0  # destinations still to acknowledge (fan-out: several)
        self.failed = False
        self.failed_since: float | None = None
        self.parent: Batch | None = None  # set on the pieces of a batch re-cut under new limits
        self.skipped: set[int] | None = None  # numbers taken out of its accounting after submission

    @property
    def records(self) -> list[bytes]:
        out: list[bytes] = []
        for command in self.commands:
            payload = command[command.index(b"\n") + 5:]  # after the line and the int32 size
            if command.startswith(b"MPUB"):
                out.extend(commands.parse_mpub_body(payload, len(payload)))
            else:
                out.append(payload)
        return out

    def release(self) -> None:
        self.commands = []

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"<Batch records={self.count} first={self.numbers.at(0) if self.count else 0}>"


def encode_batch(topic: bytes, records: list[bytes], numbers: Numbers, defer_ms: int | None) -> Batch:
    if defer_ms is None:
        return Batch(len(records), numbers, [commands.mpub_unchecked(topic, records)])
    cmds = [commands.dpub(topic, defer_ms, record) for record in records]
    return Batch(len(records), numbers, cmds)


def cut_batches(records: Sequence[bytes], limits: Limits) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` slices of ``records`` that each fit one MPUB by count and bytes."""
    total = len(records)
    if total == 0:
        return
    budget = limits.body_budget
    max_count = limits.max_count
    # C loops only, per record (sum, map, accumulate): the per-record prefix is added per batch
    if total <= max_count and sum(map(len, records)) + MPUB_OVERHEAD_PER_RECORD * total <= budget:
        yield 0, total
        return
    lengths = list(accumulate(map(len, records)))  # record bytes up to each index, no prefixes

    def size(index: int) -> int:  # MPUB body bytes of records[:index + 1], prefixes included
        return lengths[index] + MPUB_OVERHEAD_PER_RECORD * (index + 1)

    indexes = range(total)
    start, base = 0, 0
    while start < total:
        stop = bisect_right(indexes, base + budget, lo=start, key=size)
        stop = min(max(stop, start + 1), start + max_count)  # at least one record per batch
        yield start, stop
        base = size(stop - 1)
        start = stop


def join_numbers(first: Numbers, first_count: int, second: Numbers, total: int) -> Numbers:
    """Numbers of two runs joined (``total`` records in all); stays contiguous (no list) in the
    common case."""
    if first.listed is None and second.listed is None and first.first + first_count == second.first:
        return Numbers(first.first)
    return Numbers(0, first.all(first_count) + second.all(total - first_count))


def split_oversized(
    records: Sequence[bytes], numbers: Numbers, limit: int
) -> tuple[list[bytes], list[int], list[tuple[int, int]]]:
    """``(kept records, their numbers, [(index, number) of each record over limit])``."""
    kept: list[bytes] = []
    kept_numbers: list[int] = []
    oversized: list[tuple[int, int]] = []
    for index, record in enumerate(records):
        if len(record) > limit:
            oversized.append((index, numbers.at(index)))
        else:
            kept.append(record)
            kept_numbers.append(numbers.at(index))
    return kept, kept_numbers, oversized


_LIMIT = re.compile(r">\s*(\d+)\s*$")


def limit_from_error(description: str) -> int | None:
    """The limit in nsqd's ``"... too big 2000 > 1024"`` error descriptions, if present."""
    match = _LIMIT.search(description.strip())
    return int(match.group(1)) if match else None
