"""The library's error classes (pynsq names kept); all derive from :class:`Error`."""

from .protocol.client import AuthRequiredError
from .protocol.errors import (
    ConnectionClosedError,
    Error,
    IntegrityError,
    LocalProtocolError,
    NSQError,
    NSQTimeoutError,
    ProtocolError,
    SendError,
)

__all__ = [
    "AuthRequiredError", "ConnectionClosedError", "Error", "IntegrityError", "LocalProtocolError",
    "NSQError", "NSQTimeoutError", "ProtocolError", "SendError",
]
