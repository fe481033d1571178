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
    "MessageStream": "reader_iter",
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
    # beyond pynsq: what Reader.messages() returns (async for, async with)
    "MessageStream",
]


if not TYPE_CHECKING:  # type checkers read the imports below: a typo is an error, not an Any

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


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only ("X as X": re-exported)
    from .backoff import BackoffTimer as BackoffTimer
    from .conn import AsyncConn as AsyncConn
    from .errors import ConnectionClosedError as ConnectionClosedError
    from .errors import Error as Error
    from .errors import IntegrityError as IntegrityError
    from .errors import NSQError as NSQError
    from .errors import ProtocolError as ProtocolError
    from .errors import SendError as SendError
    from .legacy_reader import LegacyReader as LegacyReader
    from .message import Message as Message
    from .message import decode_message as decode_message
    from .protocol import FRAME_TYPE_ERROR as FRAME_TYPE_ERROR
    from .protocol import FRAME_TYPE_MESSAGE as FRAME_TYPE_MESSAGE
    from .protocol import FRAME_TYPE_RESPONSE as FRAME_TYPE_RESPONSE
    from .protocol import auth as auth
    from .protocol import cls as cls
    from .protocol import dpub as dpub
    from .protocol import finish as finish
    from .protocol import identify as identify
    from .protocol import mpub as mpub
    from .protocol import nop as nop
    from .protocol import pub as pub
    from .protocol import ready as ready
    from .protocol import requeue as requeue
    from .protocol import subscribe as subscribe
    from .protocol import touch as touch
    from .protocol import unpack_response as unpack_response
    from .protocol import valid_channel_name as valid_channel_name
    from .protocol import valid_topic_name as valid_topic_name
    from .publisher import NsqdRefusedError as NsqdRefusedError
    from .publisher import NsqdUnreachableError as NsqdUnreachableError
    from .publisher import PublishError as PublishError
    from .publisher import PublishReport as PublishReport
    from .publisher import Publisher as Publisher
    from .publisher import RecordTooLargeError as RecordTooLargeError
    from .publisher import RetryTimeoutError as RetryTimeoutError
    from .reader import Reader as Reader
    from .reader_iter import MessageStream as MessageStream
    from .run_loop import close_all as close_all
    from .run_loop import run as run
    from .sync_conn import SyncConn as SyncConn
    from .writer import Writer as Writer
