"""Events the client protocol core hands out (h11 style: frozen, comparable in tests)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import NSQError
from .frames import MessageFrame
from .identify import IdentifyResponse


@dataclass(frozen=True, slots=True)
class IdentifyResponseReceived:
    response: IdentifyResponse


@dataclass(frozen=True, slots=True)
class StartTLS:
    """The transport must start TLS now, then call ``ClientProtocol.tls_established()``."""


@dataclass(frozen=True, slots=True)
class CompressionStarted:
    kind: str  # "snappy" or "deflate"


@dataclass(frozen=True, slots=True)
class AuthRequested:
    """nsqd wants AUTH: send ``ClientProtocol.auth_command()`` now (the secret stays out of events)."""


@dataclass(frozen=True, slots=True)
class AuthResponseReceived:
    data: dict


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """IDENTIFY, upgrades and AUTH are done: SUB and PUB may be sent."""


@dataclass(frozen=True, slots=True)
class Response:
    """nsqd's answer to ``command`` (SUB, PUB, MPUB, DPUB, CLS, ...): ``b"OK"`` or ``b"CLOSE_WAIT"``."""

    data: bytes
    command: bytes


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """nsqd's ``_heartbeat_``; answer it with NOP."""


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    """An E_* error frame; ``command`` is what it answers when that is known (None for FIN/REQ/TOUCH)."""

    error: NSQError
    command: bytes | None = None

    @property
    def fatal(self) -> bool:
        return self.error.fatal


Event = (
    IdentifyResponseReceived | StartTLS | CompressionStarted | AuthRequested | AuthResponseReceived
    | HandshakeComplete | Response | Heartbeat | ErrorReceived | MessageFrame
)
