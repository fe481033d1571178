"""The sans-I/O NSQ protocol core: commands, frames, names, compression and the client state machine.

Imports no tornado, no socket and no clock; the client library, the embedded broker and the test
fakes all speak NSQ through it.
"""

# Load the ``identify`` submodule first: importing it later would rebind the package attribute
# ``identify`` from the command encoder (pynsq's ``nsq.identify``) to the module.
from . import identify as _identify_module  # noqa: F401

from .commands import (
    BODY_COMMANDS,
    RESPONSE_COMMANDS,
    Command,
    CommandParser,
    CommandReader,
    auth,
    cls,
    dpub,
    finish,
    identify,
    magic,
    mpub,
    nop,
    parse_command_line,
    parse_mpub_body,
    pub,
    ready,
    requeue,
    subscribe,
    touch,
)
from .constants import (
    FRAME_TYPE_ERROR,
    FRAME_TYPE_MESSAGE,
    FRAME_TYPE_RESPONSE,
    MAGIC_V1,
    MAGIC_V2,
    NON_FATAL_ERROR_CODES,
)
from .errors import (
    ConnectionClosedError,
    Error,
    IntegrityError,
    LocalProtocolError,
    NSQError,
    NSQTimeoutError,
    ProtocolError,
    SendError,
)
from .frames import FrameBuffer, MessageFrame, decode_message, encode_frame, encode_message, unpack_response
from .names import valid_channel_name, valid_topic_name

__all__ = [  # listed, not computed: type checkers read it to see what is re-exported
    "BODY_COMMANDS", "RESPONSE_COMMANDS", "Command", "CommandParser", "CommandReader", "auth", "cls",
    "dpub", "finish", "identify", "magic", "mpub", "nop", "parse_command_line", "parse_mpub_body",
    "pub", "ready", "requeue", "subscribe", "touch",
    "FRAME_TYPE_ERROR", "FRAME_TYPE_MESSAGE", "FRAME_TYPE_RESPONSE", "MAGIC_V1", "MAGIC_V2",
    "NON_FATAL_ERROR_CODES",
    "ConnectionClosedError", "Error", "IntegrityError", "LocalProtocolError", "NSQError",
    "NSQTimeoutError", "ProtocolError", "SendError",
    "FrameBuffer", "MessageFrame", "decode_message", "encode_frame", "encode_message", "unpack_response",
    "valid_channel_name", "valid_topic_name",
]
