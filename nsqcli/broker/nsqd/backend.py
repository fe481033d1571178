"""Where a topic's or channel's messages go beyond ``mem_queue_size``: nsqd's backend queue.

A durable topic or channel has a :class:`MessageDiskQueue` (a :class:`DiskQueue` of encoded
messages); an ``#ephemeral`` one has a :class:`DiscardQueue`, which, like nsqd's dummy backend,
drops what it is given.
"""

from __future__ import annotations

import logging
import struct
from collections import deque

from .diskqueue import DiskQueue
from .message import Message

log = logging.getLogger("nsqcli.broker.nsqd")

#: A message on disk: timestamp (ns), attempts, then the 16-byte id and the body (nsqd's layout).
_HEAD = struct.Struct(">QH")
_ID_END = _HEAD.size + 16
#: Bytes a message adds to its body on disk.
MESSAGE_OVERHEAD = _ID_END


def encode(msg: Message) -> bytes:
    return _HEAD.pack(msg.timestamp, msg.attempts) + msg.id + msg.body


def decode(record: bytes) -> Message | None:
    if len(record) < _ID_END:
        return None
    timestamp, attempts = _HEAD.unpack_from(record)
    msg = Message(record[_HEAD.size:_ID_END], record[_ID_END:], timestamp)
    msg.attempts = attempts
    return msg


def spill(memory: deque[Message], backend: "MessageDiskQueue | DiscardQueue",
          messages: list[Message], room: int) -> None:
    """Append the first ``room`` of ``messages`` to ``memory`` and hand the rest to ``backend``."""
    if room >= len(messages):
        memory.extend(messages)
        return
    if room > 0:
        memory.extend(messages[:room])
        messages = messages[room:]
    backend.put_messages(messages)


class MessageDiskQueue(DiskQueue):
    """A DiskQueue of messages (attempts and timestamp kept; a deferral is not, as in nsqd)."""

    def put_messages(self, messages: list[Message]) -> None:
        self.put([encode(m) for m in messages])

    def read_messages(self, limit: int) -> list[Message]:
        out = []
        for record in self.read(limit):
            msg = decode(record)
            if msg is None:
                log.error("disk queue %s: skipped a record too short for a message", self.path)
            else:
                out.append(msg)
        return out


class DiscardQueue:
    """The backend of an ephemeral topic or channel: never holds anything."""

    depth = 0

    def put_messages(self, messages: list[Message]) -> None:
        pass

    def read_messages(self, limit: int) -> list[Message]:
        return []

    def sync(self) -> None:
        pass

    maybe_sync = close = empty = delete = sync
