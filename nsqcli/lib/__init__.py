"""nsqcli.lib: an NSQ client library with pynsq's public API (``import nsqcli.lib as nsq``).

Names are resolved lazily (PEP 562) so that importing one part, such as the sans-I/O protocol
core, does not load tornado, and so that the command-line tools start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module (relative to nsqcli.lib) that defines it
_EXPORTS = {
    "Reader": "reader",
    "Writer": "writer",
    "Publisher": "publisher",
    "PublishReport": "publisher",
    "PublishError": "publisher",
    "NsqdUnreachableError": "publisher",
    "NsqdRefusedError": "publisher",
    "RecordTooLargeError": "publisher",
    "RetryTimeoutError": "publisher",
    "LegacyReader": "legacy_reader",
    "run": "run_loop",
    "close_all": "run_loop",
    "BackoffTimer": "backoff",
    "Message": "message",
    "AsyncConn": "conn",
    "SyncConn": "sync_conn",
    "Error": "errors",
    "SendError": "errors",
    "ConnectionClosedError": "errors",
    "IntegrityError": "errors",
    "NSQError": "errors",
    "ProtocolError": "errors",
    "unpack_response": "protocol",
    "decode_message": "message",
    "identify": "protocol",
    "subscribe": "protocol",
    "ready": "protocol",
    "finish": "protocol",
    "touch": "protocol",
    "requeue": "protocol",
    "nop": "protocol",
    "pub": "protocol",
    "mpub": "protocol",
    "dpub": "protocol",
    "auth": "protocol",
    "cls": "protocol",
    "valid_topic_name": "protocol",
    "valid_channel_name": "protocol",
    "FRAME_TYPE_RESPONSE": "protocol",
    "FRAME_TYPE_ERROR": "protocol",
    "FRAME_TYPE_MESSAGE": "protocol",
}

__all__ = [
    "Reader", "Writer", "run", "BackoffTimer", "Message", "Error", "LegacyReader", "SyncConn",
    "AsyncConn", "unpack_response", "decode_message", "identify", "subscribe", "ready", "finish",
    "touch", "requeue", "nop", "pub", "mpub", "valid_topic_name", "valid_channel_name",
    "FRAME_TYPE_RESPONSE", "FRAME_TYPE_ERROR", "FRAME_TYPE_MESSAGE",
    # beyond pynsq: the bulk publisher
    "Publisher", "PublishReport", "PublishError", "NsqdUnreachableError", "NsqdRefusedError",
    "RecordTooLargeError", "RetryTimeoutError",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'nsqcli.lib' has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{module_name}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .backoff import BackoffTimer
    from .conn import AsyncConn
    from .errors import ConnectionClosedError, Error, IntegrityError, NSQError, ProtocolError, SendError
    from .legacy_reader import LegacyReader
    from .message import Message, decode_message
    from .protocol import (
        FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE, auth, cls, dpub, finish,
        identify, mpub, nop, pub, ready, requeue, subscribe, touch, unpack_response,
        valid_channel_name, valid_topic_name,
    )
    from .publisher import (
        NsqdRefusedError, NsqdUnreachableError, PublishError, PublishReport, Publisher,
        RecordTooLargeError, RetryTimeoutError,
    )
    from .reader import Reader
    from .run_loop import close_all, run
    from .sync_conn import SyncConn
    from .writer import Writer
