"""AsyncConn's constructor arguments: checked once (ValueError/TypeError naming the argument)."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, TypedDict

from . import __version__
from .protocol.identify import build_identify
from .tls import make_ssl_context

if TYPE_CHECKING:
    from tornado.ioloop import IOLoop

DEFAULT_USER_AGENT = f"nsqcli/{__version__}"
#: go-nsq's cap on the computed requeue delay (MaxRequeueDelay), in seconds.
DEFAULT_MAX_REQUEUE_DELAY = 900
DEFAULT_TIMEOUT = 1.0  # seconds: TCP connect, and each handshake stage


class ConnKwargs(TypedDict, total=False):
    """AsyncConn's options by keyword: what ``Reader(**kwargs)`` and ``Writer(**kwargs)`` pass to
    each of their connections (tests/test_types.py keeps it equal to AsyncConn's parameters)."""

    timeout: float
    heartbeat_interval: float
    requeue_delay: float
    tls_v1: bool
    tls_options: ssl.SSLContext | Mapping[str, Any] | None
    snappy: bool
    deflate: bool
    deflate_level: int
    user_agent: str
    output_buffer_size: int
    output_buffer_timeout: int
    sample_rate: int
    io_loop: IOLoop | None
    auth_secret: str | bytes | None
    msg_timeout: float | None
    hostname: str | None
    max_frame_size: int | None
    max_requeue_delay: float


def number(name: str, value: object, minimum: float = 0.0, *, allow_equal: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if value < minimum or (not allow_equal and value == minimum):
        raise ValueError(f"{name} must be {'>=' if allow_equal else '>'} {minimum:g}, got {value!r}")
    return value


def flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return value


@dataclass
class ConnOptions:
    """Everything AsyncConn needs besides host and port, validated."""

    timeout: float
    heartbeat_interval: float  # seconds; -1 disables heartbeats and the stale check
    requeue_delay: float
    max_requeue_delay: float
    tls_v1: bool
    ssl_context: ssl.SSLContext | None
    identify_data: dict[str, Any]
    auth_secret: bytes | None
    max_frame_size: int | None  # None: any message nsqd can send

    def __repr__(self) -> str:  # the auth secret stays out of every repr
        return (f"ConnOptions(timeout={self.timeout}, heartbeat_interval={self.heartbeat_interval}, "
                f"tls_v1={self.tls_v1}, auth={'set' if self.auth_secret else 'none'})")


def split_host(host: object) -> str:
    """``"[::1]"`` -> ``"::1"``; rejects empty and non-str hosts."""
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError("host must not be empty")
    return host


def check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535, got {port}")
    return port


def build_options(
    *, timeout: Any, heartbeat_interval: Any, requeue_delay: Any, max_requeue_delay: Any,
    tls_v1: Any, tls_options: Any, snappy: Any, deflate: Any, deflate_level: Any, user_agent: Any,
    output_buffer_size: Any, output_buffer_timeout: Any, sample_rate: Any, auth_secret: Any,
    msg_timeout: Any, hostname: Any, max_frame_size: Any,
) -> ConnOptions:
    timeout = number("timeout", timeout, 0, allow_equal=False)
    if heartbeat_interval != -1:
        heartbeat_interval = number("heartbeat_interval", heartbeat_interval, 1)
    requeue_delay = number("requeue_delay", requeue_delay)
    max_requeue_delay = number("max_requeue_delay", max_requeue_delay)
    if msg_timeout is not None:
        msg_timeout = number("msg_timeout", msg_timeout, 0, allow_equal=False)
    if not isinstance(user_agent, str):
        raise TypeError(f"user_agent must be a str, not {type(user_agent).__name__}")
    if hostname is None:
        hostname = socket.gethostname()
    elif not isinstance(hostname, str):
        raise TypeError(f"hostname must be a str, not {type(hostname).__name__}")
    if auth_secret is not None:
        if isinstance(auth_secret, str):
            auth_secret = auth_secret.encode("utf-8")
        elif not isinstance(auth_secret, (bytes, bytearray)):
            raise TypeError(f"auth_secret must be str or bytes, not {type(auth_secret).__name__}")
        auth_secret = bytes(auth_secret) or None
    if max_frame_size is not None and (isinstance(max_frame_size, bool) or not isinstance(max_frame_size, int)
                                       or max_frame_size < 64):
        raise ValueError(f"max_frame_size must be an int >= 64 (or None), got {max_frame_size!r}")
    tls_v1 = flag("tls_v1", tls_v1)
    ssl_context = make_ssl_context(tls_options) if (tls_v1 or tls_options is not None) else None
    identify_data = build_identify(
        client_id=hostname.split(".")[0],
        hostname=hostname,
        user_agent=user_agent,
        heartbeat_interval_ms=-1 if heartbeat_interval == -1 else int(heartbeat_interval * 1000),
        tls_v1=tls_v1,
        snappy=flag("snappy", snappy),
        deflate=flag("deflate", deflate),
        deflate_level=deflate_level,
        output_buffer_size=output_buffer_size,
        output_buffer_timeout_ms=output_buffer_timeout,
        sample_rate=sample_rate,
        msg_timeout_ms=None if msg_timeout is None else int(msg_timeout * 1000),
    )
    return ConnOptions(
        timeout=timeout, heartbeat_interval=heartbeat_interval, requeue_delay=requeue_delay,
        max_requeue_delay=max_requeue_delay, tls_v1=tls_v1, ssl_context=ssl_context,
        identify_data=identify_data, auth_secret=auth_secret, max_frame_size=max_frame_size,
    )

