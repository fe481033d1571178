"""A topic: keeps messages until its first channel exists, then copies each to every channel.

Like nsqd's topic messagePump, a paused topic (or one with no channel yet) holds its messages in
its own queue (its ``depth``); they flow once a channel exists and the topic is unpaused.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from nsqcli.lib.protocol.names import is_ephemeral

from .channel import Channel
from .message import Message

if TYPE_CHECKING:
    from .server import NSQD


class Topic:
    def __init__(self, name: str, nsqd: "NSQD") -> None:
        self.name = name
        self.nsqd = nsqd
        self.ephemeral = is_ephemeral(name)
        self.channels: dict[str, Channel] = {}
        self.queue: deque[Message] = deque()
        self.paused = False
        self.exiting = False
        #: False while the topic asks lookupd for channels to pre-create (nsqd does the same).
        self.started = True
        self.message_count = 0
        self.message_bytes = 0

    @property
    def depth(self) -> int:
        return len(self.queue)

    def new_message(self, body: bytes, deferred_ms: int = 0) -> Message:
        msg = Message(self.nsqd.guid.new_id(), body)
        msg.deferred_ms = deferred_ms
        return msg

    def put_messages(self, messages: list[Message]) -> None:
        self.message_count += len(messages)
        self.message_bytes += sum(len(m.body) for m in messages)
        if self.channels and not self.paused and self.started and not self.queue:
            self._distribute(messages)
            return
        limit = self.nsqd.options.mem_queue_size
        if self.ephemeral and len(self.queue) + len(messages) > limit:
            messages = messages[: max(0, limit - len(self.queue))]
        self.queue.extend(messages)
        self.pump()

    def pump(self) -> None:
        """Move held messages to the channels when that is allowed."""
        if self.queue and self.channels and not self.paused and self.started and not self.exiting:
            held = list(self.queue)
            self.queue.clear()
            self._distribute(held)

    def _distribute(self, messages: list[Message]) -> None:
        for index, channel in enumerate(list(self.channels.values())):
            batch = messages if index == 0 else [m.copy() for m in messages]
            ready = []
            for msg in batch:
                if msg.deferred_ms:
                    channel.put_deferred(msg, msg.deferred_ms)
                else:
                    ready.append(msg)
            if ready:
                channel.put_many(ready)

    # ---------------------------------------------------------------- channels

    def get_channel(self, name: str) -> Channel:
        channel = self.channels.get(name)
        if channel is None:
            channel = Channel(self, name, self.nsqd)
            self.channels[name] = channel
            self.nsqd.notify_lookupd(channel)
            self.pump()
        return channel

    def delete_channel(self, name: str) -> bool:
        channel = self.channels.pop(name, None)
        if channel is None:
            return False
        channel.close()
        self.nsqd.notify_lookupd(channel)
        if self.ephemeral and not self.channels and not self.exiting:
            self.nsqd.delete_topic(self.name)
        return True

    # ---------------------------------------------------------------- admin

    def pause(self) -> None:
        self.paused = True

    def unpause(self) -> None:
        self.paused = False
        self.pump()

    def empty(self) -> None:
        self.queue.clear()

    def start(self) -> None:
        self.started = True
        self.pump()

    def close(self) -> None:
        """Deleted: delete every channel (closing their consumers) and drop held messages."""
        self.exiting = True
        for name in list(self.channels):
            self.delete_channel(name)
        self.queue.clear()
