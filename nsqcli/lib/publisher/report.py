"""The exact accounting of a :class:`~nsqcli.lib.publisher.Publisher`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterator

from .errors import PublishError


@dataclass
class PublishReport:
    """What became of every record handed to the publisher, by number (1, 2, ... in the order
    given, empty ones included).

    Once nothing is outstanding (after ``flush()``/``close()``)::

        submitted == acknowledged + given_up
        records handed in == submitted + skipped_empty + skipped_oversized
    """

    submitted: int = 0  #: records sent or to be sent (not the skipped ones)
    acknowledged: int = 0  #: records nsqd answered OK for (fan-out: every nsqd did)
    given_up: int = 0  #: records not acknowledged: nsqd refused them, or retry_timeout passed
    skipped_empty: int = 0  #: empty records (nsqd refuses empty messages): never sent
    skipped_oversized: int = 0  #: records over max-msg-size, with skip_oversized=True
    #: what stopped publishing early or gave records up (None: nothing did)
    error: PublishError | None = None
    #: ``(number, body)`` of each given-up record, by number after flush()/close()
    #: (empty when the publisher was made with ``keep_failed=False``)
    failed: list[tuple[int, bytes]] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """True when no record was given up and nothing stopped publishing."""
        return self.given_up == 0 and self.error is None

    @property
    def given_up_numbers(self) -> list[int]:
        return [number for number, _ in self.failed]

    def failed_records(self) -> Iterator[bytes]:
        """The given-up records' bodies, in number order (for a rerun)."""
        for _, record in self.failed:
            yield record

    def copy(self) -> "PublishReport":
        return dataclasses.replace(self, failed=list(self.failed))
