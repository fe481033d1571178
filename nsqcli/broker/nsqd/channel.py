"""A channel: its ready queue, in-flight and deferred messages, and the consumers sharing it.

Delivery follows nsqd: a consumer gets messages while its in-flight count is below its RDY; each
delivery increments ``attempts``; in-flight messages that time out and deferred messages that
come due go back to the queue. The queue holds up to ``mem_queue_size`` messages in memory and
the rest in the channel's disk queue (an #ephemeral channel drops the rest, as nsqd does); while
the disk queue holds anything, new messages queue behind it and memory refills from it, so
delivery keeps queue order (nsqd takes from memory and disk at random).

Timeouts live in two heaps served by the broker's queue scan (like nsqd's queueScanLoop, see
queue_scan.py) instead of a timer per message; stale heap entries (finished, touched, requeued
messages) are skipped by generation and compacted when they pile up.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
from collections import deque
from typing import TYPE_CHECKING

from nsqcli.lib.protocol.names import is_ephemeral

from .backend import spill
from .message import Message

if TYPE_CHECKING:
    from .client import ClientV2
    from .server import NSQD
    from .topic import Topic

log = logging.getLogger("nsqcli.broker.nsqd")


class Channel:
    def __init__(self, topic: "Topic", name: str, nsqd: "NSQD") -> None:
        self.topic = topic
        self.topic_name = topic.name
        self.name = name
        self.nsqd = nsqd
        self.ephemeral = is_ephemeral(name)
        self.queue: deque[Message] = deque()
        self.backend = nsqd.open_backend(topic.name, name)
        self._memory_limit = nsqd.options.mem_queue_size
        self.in_flight: dict[bytes, Message] = {}
        self.deferred: dict[bytes, Message] = {}
        self._in_flight_heap: list[tuple[float, int, Message]] = []
        self._deferred_heap: list[tuple[float, int, Message]] = []
        self._generations = itertools.count(1)
        self.clients: dict[int, "ClientV2"] = {}
        self.paused = False
        self.exiting = False
        self.message_count = 0
        self.requeue_count = 0
        self.timeout_count = 0
        self._dispatch_scheduled = False
        self._rotation = 0

    # ---------------------------------------------------------------- queueing

    def put_many(self, messages: list[Message]) -> None:
        """New messages from the topic (counted in message_count)."""
        self.message_count += len(messages)
        self._store(messages)
        self.wake()

    def _store(self, messages: list[Message]) -> None:
        queue = self.queue
        room = 0 if self.backend.depth else self._memory_limit - len(queue)
        if room >= len(messages):  # the fast path, inlined
            queue.extend(messages)
            return
        try:
            spill(queue, self.backend, messages, room)
        except OSError as error:  # nsqd logs it too; the messages are lost
            log.error("channel %s:%s: failed to write %d messages to disk: %s",
                      self.topic_name, self.name, len(messages), error)

    def _refill(self) -> bool:
        """Memory is empty: take the oldest messages from the disk queue; False if it has none."""
        if not self.backend.depth:
            return False
        self.queue.extend(self.backend.read_messages(max(self._memory_limit, 1)))
        return bool(self.queue)

    def put_deferred(self, msg: Message, delay_ms: int) -> None:
        self.message_count += 1
        self._defer(msg, delay_ms)

    def _defer(self, msg: Message, delay_ms: int) -> None:
        gen = next(self._generations)
        msg.generation = gen
        msg.deadline = self.nsqd.now() + delay_ms / 1000.0
        self.deferred[msg.id] = msg
        heapq.heappush(self._deferred_heap, (msg.deadline, gen, msg))

    def _requeue_now(self, msg: Message) -> None:
        if self.exiting:
            return
        self._store([msg])
        self.wake()

    @property
    def depth(self) -> int:
        return len(self.queue) + self.backend.depth

    # ---------------------------------------------------------------- delivery

    def wake(self) -> None:
        """Deliver soon: many wake-ups in one loop pass (a burst of FINs, an MPUB) make one pass."""
        if not self._dispatch_scheduled and (self.queue or self.backend.depth) and not self.paused:
            self._dispatch_scheduled = True
            self.nsqd.loop.call_soon(self.dispatch)

    def dispatch(self) -> None:
        self._dispatch_scheduled = False
        queue = self.queue
        if self.paused or self.exiting or not self.clients or not (queue or self._refill()):
            return
        clients = list(self.clients.values())
        if len(clients) > 1:
            self._rotation = (self._rotation + 1) % len(clients)
            clients = clients[self._rotation:] + clients[: self._rotation]
        ready = [c for c in clients if c.ready_for_messages()]
        now = self.nsqd.now()
        heap = self._in_flight_heap
        in_flight = self.in_flight
        gens = self._generations
        while ready and (queue or self._refill()):
            still_ready = []
            for client in ready:
                if not queue and not self._refill():
                    break
                msg = queue.popleft()
                rate = client.sample_rate
                if rate and random.randrange(100) > rate:
                    still_ready.append(client)  # sampled out: nsqd drops the message
                    continue
                msg.attempts = (msg.attempts + 1) & 0xFFFF
                msg.client = client
                msg.delivered_at = now
                msg.deadline = deadline = now + client.msg_timeout
                msg.generation = gen = next(gens)
                in_flight[msg.id] = msg
                heapq.heappush(heap, (deadline, gen, msg))
                client.send_message(msg)
                if client.in_flight < client.rdy:
                    still_ready.append(client)
            ready = still_ready

    # ---------------------------------------------------------------- consumer answers

    def _pop_in_flight(self, client: "ClientV2", msg_id: bytes) -> Message | str:
        msg = self.in_flight.get(msg_id)
        if msg is None:
            return "ID not in flight"
        if msg.client is not client:
            return "client does not own message"
        del self.in_flight[msg_id]
        msg.generation = 0
        return msg

    def finish(self, client: "ClientV2", msg_id: bytes) -> str | None:
        """None on success, else nsqd's error text."""
        msg = self._pop_in_flight(client, msg_id)
        if isinstance(msg, str):
            return msg
        msg.client = None
        return None

    def requeue(self, client: "ClientV2", msg_id: bytes, delay_ms: int) -> str | None:
        msg = self._pop_in_flight(client, msg_id)
        if isinstance(msg, str):
            return msg
        msg.client = None
        self.requeue_count += 1
        if delay_ms == 0:
            self._requeue_now(msg)
        else:
            self._defer(msg, delay_ms)
        return None

    def touch(self, client: "ClientV2", msg_id: bytes, timeout: float) -> str | None:
        msg = self.in_flight.get(msg_id)
        if msg is None:
            return "ID not in flight"
        if msg.client is not client:
            return "client does not own message"
        max_timeout = self.nsqd.options.max_msg_timeout_ms / 1000.0
        deadline = self.nsqd.now() + timeout
        if deadline - msg.delivered_at >= max_timeout:
            deadline = msg.delivered_at + max_timeout
        msg.deadline = deadline
        msg.generation = gen = next(self._generations)
        heapq.heappush(self._in_flight_heap, (deadline, gen, msg))
        return None

    # ---------------------------------------------------------------- timeouts

    def scan(self, now: float) -> bool:
        """Requeue timed-out in-flight messages and due deferred ones; True if any moved."""
        if self.exiting:
            return False
        moved: list[Message] = []
        heap = self._in_flight_heap
        in_flight = self.in_flight
        while heap and heap[0][0] <= now:
            _, gen, msg = heapq.heappop(heap)
            if msg.generation != gen or in_flight.get(msg.id) is not msg:
                continue
            del in_flight[msg.id]
            msg.generation = 0
            self.timeout_count += 1
            owner = msg.client
            msg.client = None
            if owner is not None and self.clients.get(owner.id) is owner:
                owner.timed_out_message()
            moved.append(msg)
        if len(heap) > 2 * len(in_flight) + 1024:
            self._in_flight_heap = heap = [(m.deadline, m.generation, m) for m in in_flight.values()]
            heapq.heapify(heap)
        dheap = self._deferred_heap
        deferred = self.deferred
        while dheap and dheap[0][0] <= now:
            _, gen, msg = heapq.heappop(dheap)
            if msg.generation != gen or deferred.get(msg.id) is not msg:
                continue
            del deferred[msg.id]
            msg.generation = 0
            moved.append(msg)
        if moved:
            self._store(moved)
            self.wake()
        return bool(moved)

    # ---------------------------------------------------------------- consumers and admin

    def add_client(self, client: "ClientV2") -> str | None:
        if self.exiting:
            return "exiting"
        if client.id in self.clients:
            return None
        limit = self.nsqd.options.max_channel_consumers
        if limit and len(self.clients) >= limit:
            return f"consumers for {self.topic_name}:{self.name} exceeds limit of {limit}"
        self.clients[client.id] = client
        return None

    def remove_client(self, client: "ClientV2") -> None:
        if self.exiting or self.clients.pop(client.id, None) is None:
            return
        if not self.clients and self.ephemeral:
            self.nsqd.loop.call_soon(self._delete_if_abandoned)

    def _delete_if_abandoned(self) -> None:
        if not self.clients and not self.exiting and self.topic.channels.get(self.name) is self:
            self.topic.delete_channel(self.name)

    def empty(self) -> None:
        self.queue.clear()
        self.backend.empty()
        self.in_flight.clear()
        self.deferred.clear()
        self._in_flight_heap = []
        self._deferred_heap = []
        for client in self.clients.values():
            client.emptied()

    def pause(self) -> None:
        self.paused = True
        self.nsqd.metadata_changed()

    def unpause(self) -> None:
        self.paused = False
        self.nsqd.metadata_changed()
        self.wake()
        for client in self.clients.values():
            client.flush_soon()

    def close(self) -> None:
        """Deleted: forcibly close the consumers' connections (nsqd does) and drop everything."""
        self.exiting = True
        for client in list(self.clients.values()):
            client.close()
        self.clients.clear()
        self.queue.clear()
        self.backend.delete()
        self.in_flight.clear()
        self.deferred.clear()
        self._in_flight_heap = []
        self._deferred_heap = []

    def shutdown(self) -> None:
        """nsqd's Close at exit (NSQD.stop closed the consumers): memory, in-flight and deferred
        messages go to the disk queue (a deferral is lost, as in nsqd)."""
        self.exiting = True
        self.clients.clear()
        leftovers = [*self.queue, *self.in_flight.values(), *self.deferred.values()]
        try:
            self.backend.put_messages(leftovers)
            self.backend.close()
        except OSError as error:
            log.error("channel %s:%s: could not write its messages to disk: %s",
                      self.topic_name, self.name, error)
        self.queue.clear()
        self.in_flight.clear()
        self.deferred.clear()

    def client_ready(self) -> None:
        """A consumer's RDY or in-flight count changed."""
        self.wake()
