"""Configuration and result of :class:`nsqcli.publisher.engine.Publisher`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from nsqcli.cli.exit_codes import ToolError

ROUND_ROBIN, FAN_OUT = "round-robin", "fan-out"


@dataclass
class PublisherConfig:
    topic: str
    addresses: list[str]
    mode: str = ROUND_ROBIN
    conn_kwargs: dict = field(default_factory=dict, repr=False)
    max_msg_size: int | None = None
    max_body_size: int | None = None
    batch_count: int = 1000
    batch_bytes: int = 256 * 1024
    window: int = 4  # batches in flight per connection (DPUB: commands)
    rate: float | None = None  # records per second
    defer_ms: int | None = None
    retry_timeout: float = 30.0
    connect_timeout: float = 5.0
    skip_oversized: bool = False

    def __post_init__(self) -> None:
        if self.mode not in (ROUND_ROBIN, FAN_OUT):
            raise ValueError(f"mode must be {ROUND_ROBIN!r} or {FAN_OUT!r}, not {self.mode!r}")
        if not self.addresses:
            raise ValueError("at least one nsqd TCP address is needed")
        if self.rate is not None and self.rate <= 0:
            raise ValueError(f"rate must be > 0 records/s, got {self.rate}")
        if self.defer_ms is not None and self.defer_ms < 0:
            raise ValueError(f"defer must be >= 0, got {self.defer_ms} ms")
        if self.retry_timeout < 0:
            raise ValueError(f"retry timeout must be >= 0, got {self.retry_timeout}")


@dataclass
class PublishReport:
    """Exact accounting: ``submitted == acknowledged + not_acknowledged``."""

    submitted: int = 0  # non-empty records handed to the publisher (minus skipped oversized)
    acknowledged: int = 0
    not_acknowledged: int = 0
    skipped_empty: int = 0
    skipped_oversized: int = 0
    error: ToolError | None = None  # what stopped publishing early, if anything
    failed: list[tuple[int, bytes]] = field(default_factory=list, repr=False)  # (number, record)

    def failed_records(self) -> Iterator[bytes]:
        for _, record in self.failed:
            yield record
