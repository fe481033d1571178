"""Why a :class:`~nsqcli.lib.publisher.Publisher` stopped or gave records up.

Every class derives from :class:`PublishError` (itself an :class:`nsqcli.lib.Error`) and its
``str()`` is one line that names what went wrong. ``start()`` raises
:class:`NsqdUnreachableError`; the others end up in :attr:`PublishReport.error` and are raised by
``async with`` when records were given up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nsqcli.lib.error_text import address_error_text
from nsqcli.lib.protocol.errors import Error

if TYPE_CHECKING:  # pragma: no cover
    from .report import PublishReport

__all__ = [
    "NsqdRefusedError", "NsqdUnreachableError", "PublishError", "RecordTooLargeError",
    "RetryTimeoutError",
]


class PublishError(Error):
    """Base class: ``message`` is the one-line text; ``report`` is the publisher's report when
    the error is raised on leaving ``async with`` (None before that)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.report: PublishReport | None = None


class NsqdUnreachableError(PublishError):
    """No connection to ``address`` (round-robin: to any nsqd; fan-out: to one of them) when the
    publisher started; the cause (refused, timed out, TLS, not nsqd...) is ``__cause__``."""

    def __init__(self, address: str, cause: BaseException, topic: str) -> None:
        super().__init__(address_error_text(address, cause, f"connecting to publish to topic {topic}"))
        self.address = address
        self.__cause__ = cause


class NsqdRefusedError(PublishError):
    """nsqd at ``address`` answered an ``E_*`` error that no retry fixes (``E_BAD_TOPIC``,
    ``E_AUTH_FAILED``, ...): ``code`` and ``description`` are nsqd's."""

    def __init__(self, address: str, cause: BaseException, topic: str) -> None:
        super().__init__(address_error_text(address, cause, f"publishing to topic {topic}"))
        self.address = address
        self.code: str = getattr(cause, "code", "")
        self.description: str = getattr(cause, "description", "")
        self.__cause__ = cause


class RecordTooLargeError(PublishError):
    """Record ``number`` is ``size`` bytes, over nsqd's max-msg-size ``limit`` (configured, or
    learned from nsqd's ``E_BAD_MESSAGE``/``E_BAD_BODY``); pass ``skip_oversized=True`` to skip
    such records instead. The records before it are still published; it and those after it are
    given up."""

    def __init__(self, number: int, size: int, limit: int) -> None:
        super().__init__(f"record {number} is {size} bytes, larger than nsqd's max-msg-size {limit}")
        self.number = number
        self.size = size
        self.limit = limit


class RetryTimeoutError(PublishError):
    """Records were given up after ``retry_timeout`` seconds of resending: ``address`` is the nsqd
    that stayed unreachable (None: every one of them)."""

    def __init__(self, message: str, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address
