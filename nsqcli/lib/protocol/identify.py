"""IDENTIFY: the body a client sends, checked client-side, and the reply it gets back.

Ranges follow nsqd's ``identify`` (protocol_v2.go) where they do not depend on nsqd's flags; the
upper bounds that nsqd's flags set (max heartbeat, max msg timeout...) are left to nsqd, which
answers ``E_BAD_BODY`` with its own limit.
"""

from __future__ import annotations

from typing import Any

from .constants import DEFAULT_MAX_RDY_COUNT
from .record import Record


def _int_field(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    return value


def build_identify(
    *,
    client_id: str,
    hostname: str,
    user_agent: str,
    heartbeat_interval_ms: int = 30_000,
    feature_negotiation: bool = True,
    tls_v1: bool = False,
    snappy: bool = False,
    deflate: bool = False,
    deflate_level: int = 6,
    output_buffer_size: int = 16 * 1024,
    output_buffer_timeout_ms: int = 250,
    sample_rate: int = 0,
    msg_timeout_ms: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The IDENTIFY dict, every field range-checked; raises ValueError naming the bad field."""
    hb = _int_field("heartbeat_interval", heartbeat_interval_ms)
    if not (hb == -1 or hb == 0 or hb >= 1000):
        raise ValueError(f"heartbeat_interval must be -1 (off), 0 (server default) or >= 1s, got {hb} ms")
    obs = _int_field("output_buffer_size", output_buffer_size)
    if not (obs == -1 or obs == 0 or obs >= 64):
        raise ValueError(f"output_buffer_size must be -1 (off), 0 (default) or >= 64 bytes, got {obs}")
    obt = _int_field("output_buffer_timeout", output_buffer_timeout_ms)
    if obt < -1:
        raise ValueError(f"output_buffer_timeout must be -1 (off), 0 (default) or > 0 ms, got {obt}")
    rate = _int_field("sample_rate", sample_rate)
    if not 0 <= rate <= 99:
        raise ValueError(f"sample_rate must be 0-99 (percent, 0 = off), got {rate}")
    if snappy and deflate:
        raise ValueError("snappy and deflate are mutually exclusive; choose one")
    level = _int_field("deflate_level", deflate_level)
    if not 1 <= level <= 9:
        raise ValueError(f"deflate_level must be 1-9, got {level}")
    data: dict[str, Any] = {
        "client_id": client_id,
        "hostname": hostname,
        "user_agent": user_agent,
        "feature_negotiation": bool(feature_negotiation),
        "heartbeat_interval": hb,
        "output_buffer_size": obs,
        "output_buffer_timeout": obt,
        "tls_v1": bool(tls_v1),
        "snappy": bool(snappy),
        "deflate": bool(deflate),
        "deflate_level": level,
        "sample_rate": rate,
    }
    if msg_timeout_ms is not None:
        mt = _int_field("msg_timeout", msg_timeout_ms)
        if not (mt == 0 or mt >= 1000):
            raise ValueError(f"msg_timeout must be 0 (server default) or >= 1s, got {mt} ms")
        data["msg_timeout"] = mt
    if extra:
        data.update(extra)
    return data


class IdentifyResponse(Record):
    """What nsqd negotiated. ``raw`` is the parsed JSON dict, or ``b"OK"`` from an old nsqd."""

    __slots__ = ("raw", "max_rdy_count", "version", "max_msg_timeout", "msg_timeout", "tls_v1",
                 "snappy", "deflate", "deflate_level", "max_deflate_level", "sample_rate",
                 "auth_required", "output_buffer_size", "output_buffer_timeout")
    _defaults = {"max_rdy_count": DEFAULT_MAX_RDY_COUNT, "version": "", "max_msg_timeout": 0,
                 "msg_timeout": 0, "tls_v1": False, "snappy": False, "deflate": False,
                 "deflate_level": 0, "max_deflate_level": 0, "sample_rate": 0,
                 "auth_required": False, "output_buffer_size": 0, "output_buffer_timeout": 0}
    raw: dict[str, Any] | bytes
    max_rdy_count: int
    version: str
    max_msg_timeout: int
    msg_timeout: int
    tls_v1: bool
    snappy: bool
    deflate: bool
    deflate_level: int
    max_deflate_level: int
    sample_rate: int
    auth_required: bool
    output_buffer_size: int
    output_buffer_timeout: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IdentifyResponse":
        def num(key: str, default: int = 0) -> int:
            value: object = data.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"IDENTIFY response field {key!r} is not an integer: {value!r}")
            return value

        return cls(
            raw=data,
            max_rdy_count=num("max_rdy_count", DEFAULT_MAX_RDY_COUNT),
            version=str(data.get("version", "")),
            max_msg_timeout=num("max_msg_timeout"),
            msg_timeout=num("msg_timeout"),
            tls_v1=bool(data.get("tls_v1", False)),
            snappy=bool(data.get("snappy", False)),
            deflate=bool(data.get("deflate", False)),
            deflate_level=num("deflate_level"),
            max_deflate_level=num("max_deflate_level"),
            sample_rate=num("sample_rate"),
            auth_required=bool(data.get("auth_required", False)),
            output_buffer_size=num("output_buffer_size"),
            output_buffer_timeout=num("output_buffer_timeout"),
        )

    @classmethod
    def legacy(cls) -> "IdentifyResponse":
        return cls(raw=b"OK")
