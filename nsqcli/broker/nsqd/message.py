"""Messages as the broker keeps them, and nsqd-style 16-hex-character ids."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from nsqcli.lib.protocol.frames import encode_message

if TYPE_CHECKING:
    from .client import ClientV2


class Message:
    """One message in one queue (each channel gets its own copy, sharing id, body and timestamp).

    ``deadline`` is the in-flight timeout (monotonic seconds) or the deferred due time;
    ``generation`` invalidates stale heap entries when a message is touched, finished or requeued.
    """

    __slots__ = ("id", "body", "timestamp", "attempts", "deferred_ms", "client",
                 "delivered_at", "deadline", "generation")

    def __init__(self, msg_id: bytes, body: bytes, timestamp: int | None = None) -> None:
        self.id = msg_id
        self.body = body
        self.timestamp = time.time_ns() if timestamp is None else timestamp
        self.attempts = 0
        self.deferred_ms = 0
        self.client: ClientV2 | None = None
        self.delivered_at = 0.0
        self.deadline = 0.0
        self.generation = 0

    def copy(self) -> "Message":
        twin = Message(self.id, self.body, self.timestamp)
        twin.deferred_ms = self.deferred_ms
        return twin

    def frame(self) -> bytes:
        return encode_message(self.timestamp, self.attempts, self.id, self.body)


class GUIDFactory:
    """Ids like nsqd's guid: milliseconds, a node id and a sequence, as 16 lowercase hex digits."""

    def __init__(self, node_id: int | None = None) -> None:
        self._node = (os.getpid() if node_id is None else node_id) & 0x3FF
        self._last = 0

    def new_id(self) -> bytes:
        millis = time.time_ns() // 1_000_000
        value = ((millis & 0x1FFFFFFFFFF) << 22) | (self._node << 12)
        # more than 4096 ids in one millisecond borrow from the next one: ids never repeat
        if value <= self._last:
            value = self._last + 1
        self._last = value
        return b"%016x" % (value & 0xFFFFFFFFFFFFFFFF)
