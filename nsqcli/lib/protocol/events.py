"""Events the client protocol core hands out (h11 style: frozen records, comparable in tests)."""

from __future__ import annotations

from typing import Any

from .errors import NSQError
from .frames import MessageFrame
from .identify import IdentifyResponse
from .record import Record, set_field


class IdentifyResponseReceived(Record):
    __slots__ = ("response",)
    response: IdentifyResponse


class StartTLS(Record):
    """The transport must start TLS now, then call ``ClientProtocol.tls_established()``."""

    __slots__ = ()


class CompressionStarted(Record):
    __slots__ = ("kind",)
    kind: str  # "snappy" or "deflate"


class AuthRequested(Record):
    """nsqd wants AUTH: send ``ClientProtocol.auth_command()`` now (the secret stays out of events)."""

    __slots__ = ()


class AuthResponseReceived(Record):
    __slots__ = ("data",)
    data: dict[str, Any]


class HandshakeComplete(Record):
    """IDENTIFY, upgrades and AUTH are done: SUB and PUB may be sent."""

    __slots__ = ()


class Response(Record):
    """nsqd's answer to ``command`` (SUB, PUB, MPUB, DPUB, CLS, ...): ``b"OK"`` or ``b"CLOSE_WAIT"``."""

    __slots__ = ("data", "command")
    data: bytes
    command: bytes

    def __init__(self, data: bytes, command: bytes) -> None:  # one per PUB: no generic __init__
        set_field(self, "data", data)
        set_field(self, "command", command)


class Heartbeat(Record):
    """nsqd's ``_heartbeat_``; answer it with NOP."""

    __slots__ = ()


class ErrorReceived(Record):
    """An E_* error frame; ``command`` is what it answers when that is known (None for FIN/REQ/TOUCH)."""

    __slots__ = ("error", "command")
    _defaults = {"command": None}
    error: NSQError
    command: bytes | None

    @property
    def fatal(self) -> bool:
        return self.error.fatal


#: every event but a message (whose class the client chooses: see ClientProtocol)
ControlEvent = (
    IdentifyResponseReceived | StartTLS | CompressionStarted | AuthRequested | AuthResponseReceived
    | HandshakeComplete | Response | Heartbeat | ErrorReceived
)
Event = ControlEvent | MessageFrame
