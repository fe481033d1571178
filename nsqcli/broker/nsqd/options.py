"""NSQDOptions: the embedded nsqd's settings, named after nsqd v1.3.0's flags (defaults included)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

#: The version the embedded nsqd reports (IDENTIFY, /info, /stats, lookupd IDENTIFY).
VERSION = "1.3.0"


@dataclass(kw_only=True)
class NSQDOptions:
    """Every field is keyword-only; the defaults are nsqd v1.3.0's.

    ``*_ms`` fields are milliseconds. ``tls_required`` is ``False``, ``True`` (TCP and HTTP need
    TLS, like ``--tls-required=true``) or ``"tcp-https"`` (only TCP clients must upgrade).
    """

    tcp_address: str = "127.0.0.1:0"
    http_address: str = "127.0.0.1:0"
    #: nsqd listens for HTTPS (default 0.0.0.0:4152) whenever it has a TLS certificate; the
    #: embedded one only when this is given too
    https_address: str = ""
    broadcast_address: str = "127.0.0.1"
    lookupd_tcp_addresses: list[str] = field(default_factory=list)
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_root_ca_file: str | None = None
    tls_client_auth_policy: str = ""
    tls_required: bool | str = False
    auth_http_addresses: list[str] = field(default_factory=list)
    max_msg_size: int = 1048576
    max_body_size: int = 5242880
    max_rdy_count: int = 2500
    msg_timeout_ms: int = 60000
    max_msg_timeout_ms: int = 900000
    max_req_timeout_ms: int = 3600000
    client_timeout_ms: int = 60000
    max_heartbeat_interval_ms: int = 60000
    max_output_buffer_size: int = 65536
    max_output_buffer_timeout_ms: int = 30000
    min_output_buffer_timeout_ms: int = 25
    output_buffer_timeout_ms: int = 250
    max_deflate_level: int = 6
    snappy: bool = True
    deflate: bool = True
    max_channel_consumers: int = 0
    mem_queue_size: int = 10000
    queue_scan_selection_count: int = 20
    #: Where metadata and disk queues live; "" (unlike nsqd, whose default is the working
    #: directory): a temporary directory of this nsqd's own, removed by NSQD.remove_data().
    data_path: str = ""
    max_bytes_per_file: int = 104857600
    sync_every: int = 2500
    sync_timeout_ms: int = 2000
    # Embedded-only knobs (nsqd has them fixed, without a flag): how often in-flight/deferred
    # queues and heartbeats are scanned, how often the list of channels to scan is refreshed,
    # and how often lookupd peers are pinged.
    queue_scan_interval_ms: int = 100
    queue_scan_refresh_interval_ms: int = 5000
    lookupd_ping_interval_ms: int = 15000

    def __post_init__(self) -> None:
        for name in ("max_msg_size", "max_body_size", "max_rdy_count", "msg_timeout_ms",
                     "max_msg_timeout_ms", "max_req_timeout_ms", "client_timeout_ms",
                     "max_heartbeat_interval_ms", "max_output_buffer_size",
                     "max_output_buffer_timeout_ms", "min_output_buffer_timeout_ms",
                     "output_buffer_timeout_ms", "max_deflate_level", "max_channel_consumers",
                     "mem_queue_size", "max_bytes_per_file", "sync_every", "sync_timeout_ms",
                     "queue_scan_selection_count", "queue_scan_interval_ms",
                     "queue_scan_refresh_interval_ms", "lookupd_ping_interval_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"NSQDOptions.{name} must be a non-negative int, got {value!r}")
        if 0 in (self.queue_scan_interval_ms, self.queue_scan_refresh_interval_ms,
                 self.lookupd_ping_interval_ms):
            raise ValueError("scan and ping intervals must be > 0 ms")
        if self.max_bytes_per_file == 0 or self.sync_every == 0:
            raise ValueError("max_bytes_per_file and sync_every must be > 0")
        try:
            self.data_path = os.fspath(self.data_path)
        except TypeError:
            raise ValueError(f"NSQDOptions.data_path must be a path, got {self.data_path!r}") from None
        if not 1 <= self.max_deflate_level <= 9:
            raise ValueError(f"max_deflate_level must be 1-9, got {self.max_deflate_level}")
        if self.tls_required not in (False, True, "tcp-https"):
            raise ValueError(f"tls_required must be False, True or 'tcp-https', got {self.tls_required!r}")
        if self.tls_client_auth_policy not in ("", "require", "require-verify"):
            raise ValueError("tls_client_auth_policy must be '', 'require' or 'require-verify'")
        if self.tls_client_auth_policy and not self.tls_required:
            self.tls_required = True  # as nsqd: a client certificate policy means TLS everywhere
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key must be given together")
        if self.tls_required and not self.tls_cert:
            raise ValueError("tls_required needs tls_cert and tls_key")
        for name in ("lookupd_tcp_addresses", "auth_http_addresses"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, [value])
            else:
                setattr(self, name, list(value))
        parse_address(self.tcp_address)
        parse_address(self.http_address)
        if self.https_address:
            parse_address(self.https_address)

    @property
    def tls_required_tcp(self) -> bool:
        return bool(self.tls_required)

    @property
    def tls_required_http(self) -> bool:
        return self.tls_required is True


def parse_address(address: str) -> tuple[str, int]:
    """``"host:port"`` / ``"[v6]:port"`` / ``":port"`` -> (host, port); ValueError when malformed."""
    if not isinstance(address, str) or ":" not in address:
        raise ValueError(f"address must look like host:port, got {address!r}")
    host, _, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"bad port in address {address!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in address {address!r}")
    return host or "0.0.0.0", port
