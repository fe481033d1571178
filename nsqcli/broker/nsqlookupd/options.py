"""NSQLookupdOptions: the embedded nsqlookupd's settings, named after nsqlookupd v1.3.0's flags."""

from __future__ import annotations

from dataclasses import dataclass

from nsqcli.broker.nsqd.options import VERSION, parse_address

__all__ = ["NSQLookupdOptions", "VERSION", "parse_address"]


@dataclass(kw_only=True)
class NSQLookupdOptions:
    """Keyword-only; the defaults are nsqlookupd's except the addresses (loopback, free ports).

    ``broadcast_address`` is what nsqlookupd tells the nsqd that registers with it (real default:
    the hostname).
    """

    tcp_address: str = "127.0.0.1:0"
    http_address: str = "127.0.0.1:0"
    broadcast_address: str = "127.0.0.1"
    #: producers that have not pinged for this long are left out of /lookup and /nodes
    inactive_producer_timeout_ms: int = 300_000
    #: how long /topic/tombstone hides a producer from /lookup
    tombstone_lifetime_ms: int = 45_000
    #: the largest IDENTIFY body accepted (nsqlookupd has no limit; we refuse absurd sizes)
    max_identify_body_size: int = 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("inactive_producer_timeout_ms", "tombstone_lifetime_ms",
                     "max_identify_body_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"NSQLookupdOptions.{name} must be a non-negative int, "
                                 f"got {value!r}")
        if not isinstance(self.broadcast_address, str) or not self.broadcast_address:
            raise ValueError("NSQLookupdOptions.broadcast_address must be a non-empty string")
        parse_address(self.tcp_address)
        parse_address(self.http_address)
