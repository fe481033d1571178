"""Error types shared by the protocol core, the client library and the broker.

The split follows h11: :class:`LocalProtocolError` means *we* misused the API (a bad argument, a
command in the wrong state); :class:`ProtocolError` means the *peer* sent something malformed.
:class:`NSQError` is an ``E_*`` error frame that nsqd sent on purpose.
"""

from __future__ import annotations

from .constants import NON_FATAL_ERROR_CODES


class Error(Exception):
    """Base class of every nsqcli.lib error (pynsq's ``nsq.Error``)."""


class ProtocolError(Error):
    """The peer sent bytes that break the protocol (bad frame, bad size, not nsqd)."""


class LocalProtocolError(Error, ValueError):
    """A command was used wrongly on our side (bad argument or wrong connection state)."""


class NSQError(Error):
    """An error frame from nsqd: ``code`` such as ``E_BAD_TOPIC`` and nsqd's description."""

    def __init__(self, code: str, description: str = "") -> None:
        self.code = code
        self.description = description
        super().__init__(f"{code} {description}".strip())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NSQError):
            return NotImplemented
        return (self.code, self.description) == (other.code, other.description)

    def __hash__(self) -> int:
        return hash((self.code, self.description))

    @property
    def fatal(self) -> bool:
        """nsqd closes the connection after every error except FIN/REQ/TOUCH failures."""
        return self.code not in NON_FATAL_ERROR_CODES

    @classmethod
    def from_frame(cls, data: bytes) -> "NSQError":
        text = data.decode("utf-8", "replace")
        code, _, description = text.partition(" ")
        return cls(code, description)


class SendError(Error):
    """A command could not be written to the connection (pynsq's ``SendError``)."""

    def __init__(self, msg: str, error: BaseException | None = None) -> None:
        self.msg = msg
        self.error = error
        super().__init__(msg if error is None else f"{msg}: {error}")


class ConnectionClosedError(Error):
    """The connection closed before the operation completed (pynsq's ``ConnectionClosedError``)."""


class IntegrityError(Error):
    """Kept for pynsq compatibility; raised when a message is answered twice."""


class NSQTimeoutError(Error, TimeoutError):
    """A connection stage (connect, IDENTIFY, TLS, AUTH, ...) did not finish in time."""

    def __init__(self, stage: str, seconds: float, address: str = "") -> None:
        self.stage = stage
        self.seconds = seconds
        where = f" to {address}" if address else ""
        super().__init__(f"timed out after {seconds:g}s {stage}{where}")
