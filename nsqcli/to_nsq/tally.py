"""What nsq-to-nsq did with the messages it took, and the lines that say it (pure counting)."""

from __future__ import annotations

from typing import Callable


class Tally:
    """Counts of the messages taken from the source, each counted once by how it was answered:

    * ``relayed``: FINed after the destination acknowledged the copy;
    * ``filtered``: FINed without relaying (the JSON filters), ``not_json`` of them because
      they were not JSON objects;
    * ``requeued``: REQed (the destination refused them or could not be reached);
    * ``given_up``: FINed without relaying after ``--consumer-opt max_attempts`` attempts.

    ``status_every`` > 0 calls ``status(line)`` each time that many more were relayed.
    """

    def __init__(self, status_every: int = 0, status: Callable[[str], None] | None = None) -> None:
        self.relayed = 0
        self.filtered = 0
        self.not_json = 0
        self.requeued = 0
        self.oversized = 0  # of the requeued: larger than the destination accepts
        self.given_up = 0
        self.status_every = status_every
        self._status = status
        self._next_status = status_every

    def add_relayed(self, count: int) -> None:
        self.relayed += count
        if self.status_every and self.relayed >= self._next_status:
            self._next_status += self.status_every * (
                (self.relayed - self._next_status) // self.status_every + 1)
            if self._status is not None:
                self._status(self.line())

    def line(self) -> str:
        """``relayed N, filtered out F, requeued R`` (and what else happened, when it did)."""
        parts = [f"relayed {self.relayed}", f"filtered out {self.filtered}"
                 + (f" ({self.not_json} not JSON objects)" if self.not_json else ""),
                 f"requeued {self.requeued}"
                 + (f" ({self.oversized} too large for the destination)" if self.oversized else "")]
        if self.given_up:
            parts.append(f"given up {self.given_up} (max_attempts)")
        return ", ".join(parts)

    def progress(self, rate: float, held: int) -> str:
        """The periodic --progress line."""
        return (f"{self.relayed:,} relayed ({rate:,.0f}/s), {self.filtered:,} filtered out, "
                f"{self.requeued:,} requeued, {held:,} held")
