"""The settings of a :class:`~nsqcli.lib.publisher.Publisher`, checked once when it is made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nsqcli.lib.addresses import format_address, parse_addresses
from nsqcli.lib.protocol.names import check_topic

ROUND_ROBIN, FAN_OUT = "round-robin", "fan-out"

# the defaults, here only: Publisher's signature, PublisherConfig and batch.Limits use them
DEFAULT_BATCH_SIZE = 1000  # records per MPUB at most
DEFAULT_BATCH_BYTES = 256 * 1024  # MPUB body bytes aimed at
DEFAULT_BATCHES_IN_FLIGHT = 4  # per connection (with defer_ms: DPUB commands, x16)
DEFAULT_RETRY_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 5.0


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_seconds(name: str, value: Any, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value}")


@dataclass
class PublisherConfig:
    """See :class:`~nsqcli.lib.publisher.Publisher` for what each setting means."""

    topic: str
    addresses: list[str]
    mode: str = ROUND_ROBIN
    conn_kwargs: dict[str, Any] = field(default_factory=dict, repr=False)
    max_msg_size: int | None = None  # None (or 0): unknown until nsqd states it
    max_body_size: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_bytes: int = DEFAULT_BATCH_BYTES
    batches_in_flight: int = DEFAULT_BATCHES_IN_FLIGHT
    rate: float | None = None  # records per second
    defer_ms: int | None = None
    retry_timeout: float = DEFAULT_RETRY_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    skip_oversized: bool = False
    keep_failed: bool = True  # keep given-up records' bodies in the report

    def __post_init__(self) -> None:
        self.topic = check_topic(self.topic)
        self.addresses = [format_address(host, port) for host, port in parse_addresses(
            self.addresses, "nsqd_tcp_addresses")]
        if self.mode not in (ROUND_ROBIN, FAN_OUT):
            raise ValueError(f"mode must be {ROUND_ROBIN!r} or {FAN_OUT!r}, not {self.mode!r}")
        for name in ("max_msg_size", "max_body_size"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 0)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("batch_bytes", self.batch_bytes, 1)
        _check_int("batches_in_flight", self.batches_in_flight, 1)
        if self.rate is not None:
            _check_seconds("rate", self.rate, positive=True)
        if self.defer_ms is not None:
            _check_int("defer_ms", self.defer_ms, 0)
        _check_seconds("retry_timeout", self.retry_timeout)
        _check_seconds("connect_timeout", self.connect_timeout, positive=True)
