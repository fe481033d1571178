"""A topic: keeps messages until its first channel exists, then copies each to every channel.

Like nsqd's topic messagePump, a paused topic (or one with no channel yet) holds its messages
(its ``depth``): up to ``mem_queue_size`` in memory, the rest in its disk queue (an #ephemeral
topic drops the rest, as nsqd does). They flow once a channel exists and the topic is unpaused,
the disk queue a batch per event-loop pass. While the disk queue holds anything new messages
queue behind it, so a topic keeps publish order (nsqd takes from memory and disk at random).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from nsqcli.lib.protocol.names import is_ephemeral

from .backend import spill
from .channel import Channel
from .message import Message

if TYPE_CHECKING:
    from .server import NSQD

log = logging.getLogger("nsqcli.broker.nsqd")

#: Messages moved from a topic's disk queue to its channels per event-loop pass.
PUMP_BATCH = 4096


class PublishFailed(Exception):
    """The disk queue could not take published messages (disk full...); nothing was queued."""


class Topic:
    def __init__(self, name: str, nsqd: "NSQD") -> None:
        self.name = name
        self.nsqd = nsqd
        self.ephemeral = is_ephemeral(name)
        self.channels: dict[str, Channel] = {}
        self.queue: deque[Message] = deque()
        self.backend = nsqd.open_backend(name)
        self._pump_scheduled = False
        self.paused = False
        self.exiting = False
        #: False while the topic asks lookupd for channels to pre-create (nsqd does the same).
        self.started = True
        # the lookupd query for channels to pre-create, if one was made (NSQD.open_topic)
        self.precreating: asyncio.Task | None = None
        self.message_count = 0
        self.message_bytes = 0

    @property
    def depth(self) -> int:
        return len(self.queue) + self.backend.depth

    def _flowing(self) -> bool:
        return bool(self.channels) and not self.paused and self.started and not self.exiting

    def new_message(self, body: bytes, deferred_ms: int = 0) -> Message:
        msg = Message(self.nsqd.guid.new_id(), body)
        msg.deferred_ms = deferred_ms
        return msg

    def put_messages(self, messages: list[Message]) -> None:
        """Queue published messages; PublishFailed when the disk queue cannot take them."""
        if self.channels and not self.paused and self.started and not self.queue \
                and not self.backend.depth:
            self._distribute(messages)
        else:
            try:
                self._store(messages)
            except OSError as error:
                log.error("topic %s: failed to write messages to disk: %s", self.name, error)
                raise PublishFailed(str(error)) from error
            self.pump()
        self.message_count += len(messages)
        self.message_bytes += sum(len(m.body) for m in messages)

    def _store(self, messages: list[Message]) -> None:
        if not messages:
            return
        queue = self.queue
        room = self.nsqd.options.mem_queue_size - len(queue)
        if self.backend.depth and not messages[0].deferred_ms:
            room = 0  # behind the disk queue (a deferred message keeps its timer in memory)
        spill(queue, self.backend, messages, room)

    def pump(self) -> None:
        """Move held messages to the channels when that is allowed."""
        if not self._flowing():
            return
        if self.queue:
            held = list(self.queue)
            self.queue.clear()
            self._distribute(held)
        if self.backend.depth and not self._pump_scheduled:
            self._pump_scheduled = True
            self.nsqd.loop.call_soon(self._pump_backend)

    def _pump_backend(self) -> None:
        self._pump_scheduled = False
        if self._flowing() and self.backend.depth:
            self._distribute(self.backend.read_messages(PUMP_BATCH))
            self.pump()

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
            self.nsqd.metadata_changed()
            self.pump()
        return channel

    def delete_channel(self, name: str) -> bool:
        channel = self.channels.pop(name, None)
        if channel is None:
            return False
        channel.close()
        self.nsqd.notify_lookupd(channel)
        self.nsqd.metadata_changed()
        if self.ephemeral and not self.channels and not self.exiting:
            self.nsqd.delete_topic(self.name)
        return True

    # ---------------------------------------------------------------- admin

    def pause(self) -> None:
        self.paused = True
        self.nsqd.metadata_changed()

    def unpause(self) -> None:
        self.paused = False
        self.nsqd.metadata_changed()
        self.pump()

    def empty(self) -> None:
        self.queue.clear()
        self.backend.empty()

    def start(self) -> None:
        self.started = True
        self.pump()

    def close(self) -> None:
        """Deleted: delete every channel (closing their consumers) and drop held messages."""
        self.exiting = True
        for name in list(self.channels):
            self.delete_channel(name)
        self.queue.clear()
        self.backend.delete()

    def shutdown(self) -> None:
        """nsqd's Close at exit: channels first, then what memory holds goes to the disk queue."""
        self.exiting = True
        for channel in self.channels.values():
            channel.shutdown()
        try:
            self.backend.put_messages(list(self.queue))
            self.backend.close()
        except OSError as error:
            log.error("topic %s: could not write its messages to disk: %s", self.name, error)
        self.queue.clear()
