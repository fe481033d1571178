"""NSQD: the embedded nsqd on the running asyncio/tornado event loop.

Messages beyond ``mem_queue_size`` go to disk queues in the data path; ``stop()`` writes what
memory holds there and the topic/channel metadata, and ``start()`` (of this object or of a new
one given the same ``data_path``) loads them back, as nsqd does across a restart.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any

from nsqcli.lib.protocol.names import is_ephemeral, valid_channel_name, valid_topic_name

from ..listeners import stop_accepting
from .backend import MESSAGE_OVERHEAD, DiscardQueue, MessageDiskQueue
from .channel import Channel
from .client import ClientV2
from .datapath import ChannelMetadata, DataPath, TopicMetadata
from .lookup_peer import LookupPeer, fetch_lookupd_channels
from .message import GUIDFactory
from .options import NSQDOptions, parse_address
from .queue_scan import QueueScanner
from .tcp import V2Connection
from .topic import Topic

log = logging.getLogger("nsqcli.broker.nsqd")


def make_ssl_context(options: NSQDOptions) -> ssl.SSLContext | None:
    """nsqd's TLS config: no client certificate is asked for unless a policy says so (a root CA
    file alone changes nothing); the root CA file, else the system's, verifies it."""
    if not options.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(options.tls_cert, options.tls_key)
    if options.tls_client_auth_policy in ("require", "require-verify"):
        if options.tls_root_ca_file:
            context.load_verify_locations(options.tls_root_ca_file)
        else:
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        # "require" (nsqd: any certificate, unverified) is verified too: Python's ssl cannot
        # ask for a certificate without verifying it
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class NSQD:
    """``NSQD(NSQDOptions(...))``; ``await start()`` binds (sets ``tcp_port``, ``http_port``)."""

    def __init__(self, options: NSQDOptions | None = None) -> None:
        self.options = options if options is not None else NSQDOptions()
        self.topics: dict[str, Topic] = {}
        self.clients: dict[int, ClientV2] = {}
        self.guid = GUIDFactory()
        self.ssl_context = make_ssl_context(self.options)
        self.tcp_port = 0
        self.http_port = 0
        self.https_port = 0  # 0: no HTTPS listener
        self.start_time = int(time.time())
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by start()
        self._client_ids = 0
        self._tcp_server: asyncio.base_events.Server | None = None
        self._http_servers: list[Any] = []
        self._ticker: asyncio.TimerHandle | None = None
        self._queue_scan = QueueScanner(
            self._all_channels, self.options.queue_scan_refresh_interval_ms / 1000.0,
            self.options.queue_scan_selection_count)
        self._lookup_peers: list[LookupPeer] = []
        self._tasks: set[asyncio.Task] = set()
        #: where metadata and disk queues live (a temporary directory unless data_path is set)
        self.data: DataPath | None = None
        self._persist_scheduled = False
        self.running = False

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self.running:
            raise RuntimeError("this NSQD is already running")
        from .http_api import start_http_servers

        self.loop = asyncio.get_running_loop()
        opts = self.options
        if self.data is None:
            self.data = DataPath(opts.data_path)
        self.data.lock()
        try:
            self._load_metadata()
            host, port = parse_address(opts.tcp_address)
            self._tcp_server = await self.loop.create_server(
                lambda: V2Connection(self), host, port, reuse_address=True, backlog=1024)
            self.tcp_port = self._tcp_server.sockets[0].getsockname()[1]
            try:
                listeners = start_http_servers(self)
            except BaseException:
                self._tcp_server.close()
                raise
        except BaseException:
            self._close_topics(persist=False)
            raise
        self._http_servers = [server for server, _ in listeners]
        self.http_port = listeners[0][1]
        self.https_port = listeners[1][1] if len(listeners) > 1 else 0
        self.start_time = int(time.time())
        self.running = True
        self._queue_scan.start(self.now())  # with the channels of the metadata, as nsqd
        self._schedule_tick()
        self._lookup_peers = [LookupPeer(self, address) for address in opts.lookupd_tcp_addresses]
        for peer in self._lookup_peers:
            peer.start()

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        if self._ticker is not None:
            self._ticker.cancel()
        for peer in self._lookup_peers:
            await peer.stop()
        self._lookup_peers = []
        assert self._tcp_server is not None  # started: running
        await stop_accepting(self._tcp_server)
        self._tcp_server.close()
        for server in self._http_servers:
            server.stop()
        for client in list(self.clients.values()):
            client.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0)
        try:
            await asyncio.wait_for(self._tcp_server.wait_closed(), 1.0)
        except asyncio.TimeoutError:
            pass
        for server in self._http_servers:
            await server.close_all_connections()
        self._close_topics(persist=True)

    def remove_data(self) -> None:
        """After stop(): delete the temporary data path (a configured data_path is kept)."""
        if self.data is not None and not self.running:
            self.data.remove()
            self.data = None

    # ---------------------------------------------------------------- the data path

    def _datapath(self) -> DataPath:
        """The data path, locked by start() (its users all run after start())."""
        if self.data is None:
            raise RuntimeError("nsqd has no data path before start()")
        return self.data

    def _load_metadata(self) -> None:
        """Topics, channels and their paused state from the data path (nsqd's LoadMetadata)."""
        for entry in self._datapath().load():
            if not valid_topic_name(entry.name):
                log.warning("skipping creation of invalid topic %s", entry.name)
                continue
            topic = self.get_topic(entry.name)
            topic.paused = entry.paused
            for channel in entry.channels:
                if not valid_channel_name(channel.name):
                    log.warning("skipping creation of invalid channel %s", channel.name)
                    continue
                topic.get_channel(channel.name).paused = channel.paused

    def _close_topics(self, persist: bool) -> None:
        """Save the metadata, write every topic's and channel's messages to disk, unlock."""
        try:
            if persist:
                self._persist_metadata()
        finally:
            for topic in self.topics.values():
                topic.shutdown()
            self.topics.clear()
            self._datapath().unlock()

    def open_backend(self, topic: str, channel: str | None = None) -> Any:
        """Where a topic's (or channel's) messages beyond mem_queue_size go."""
        if is_ephemeral(topic if channel is None else channel):
            return DiscardQueue()
        opts = self.options
        return MessageDiskQueue(self._datapath().queue_path(topic, channel),
                                max_bytes_per_file=opts.max_bytes_per_file,
                                max_record_size=opts.max_msg_size + MESSAGE_OVERHEAD,
                                sync_every=opts.sync_every,
                                sync_timeout=opts.sync_timeout_ms / 1000.0)

    def metadata_changed(self) -> None:
        """A topic or channel came, went, paused or unpaused: save the metadata soon."""
        if self.running and not self._persist_scheduled:
            self._persist_scheduled = True
            self.loop.call_soon(self._persist_soon)

    def _persist_soon(self) -> None:
        self._persist_scheduled = False
        if self.running:  # stop() saves the metadata itself
            self._persist_metadata()

    def _persist_metadata(self) -> None:
        topics = [TopicMetadata(t.name, t.paused, [ChannelMetadata(c.name, c.paused)
                                                   for c in t.channels.values() if not c.ephemeral])
                  for t in self.topics.values() if not t.ephemeral]
        try:
            self._datapath().save(topics)
        except OSError as error:
            log.error("failed to persist metadata - %s", error)

    # ---------------------------------------------------------------- helpers for the parts

    def now(self) -> float:
        return self.loop.time()

    @property
    def auth_enabled(self) -> bool:
        return bool(self.options.auth_http_addresses)

    def next_client_id(self) -> int:
        self._client_ids += 1
        return self._client_ids

    def add_client(self, client: ClientV2) -> None:
        self.clients[client.id] = client

    def remove_client(self, client: ClientV2) -> None:
        self.clients.pop(client.id, None)

    def spawn(self, coro: Any) -> asyncio.Task:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---------------------------------------------------------------- topics

    def get_topic(self, name: str) -> Topic:
        """The topic, created if new (see open_topic for what its creator waits for)."""
        topic = self.topics.get(name)
        return topic if topic is not None else self._new_topic(name)

    def open_topic(self, name: str) -> tuple[Topic, asyncio.Future | None]:
        """nsqd's GetTopic as a client command or HTTP request sees it: the topic and, when this
        call created it and asks lookupd for the channels to pre-create, what to await before
        answering. nsqd's creator blocks on that query; a concurrent caller finds the topic in
        the map and goes on at once (its messages are held until the topic starts)."""
        topic = self.topics.get(name)
        if topic is not None:
            return topic, None
        topic = self._new_topic(name)
        if topic.precreating is None:
            return topic, None
        # shielded: a client that hangs up while it waits must not cancel the query
        return topic, asyncio.shield(topic.precreating)

    def _new_topic(self, name: str) -> Topic:
        topic = Topic(name, self)
        self.topics[name] = topic
        self.notify_lookupd(topic)
        self.metadata_changed()
        http_addresses = [p.http_address for p in self._lookup_peers if p.http_address]
        if http_addresses:
            # nsqd pre-creates the channels lookupd knows before the topic starts flowing
            topic.started = False
            topic.precreating = self.spawn(self._precreate_channels(topic, http_addresses))
        return topic

    async def _precreate_channels(self, topic: Topic, http_addresses: list[str]) -> None:
        try:
            names = await fetch_lookupd_channels(topic.name, http_addresses)
            for name in names:
                if not name.endswith("#ephemeral") and not topic.exiting:
                    topic.get_channel(name)
        finally:
            topic.start()

    def get_existing_topic(self, name: str) -> Topic | None:
        return self.topics.get(name)

    def delete_topic(self, name: str) -> bool:
        topic = self.topics.pop(name, None)
        if topic is None:
            return False
        self.notify_lookupd(topic)
        topic.close()
        self.metadata_changed()
        return True

    def set_lookupd_addresses(self, addresses: list[str]) -> None:
        """PUT /config/nsqlookupd_tcp_addresses: drop peers no longer listed, connect new ones."""
        self.options.lookupd_tcp_addresses = list(addresses)
        keep = []
        for peer in self._lookup_peers:
            if peer.address in addresses:
                keep.append(peer)
            else:
                self.spawn(peer.stop())
        known = {peer.address for peer in keep}
        for address in addresses:
            if address not in known:
                peer = LookupPeer(self, address)
                peer.start()
                keep.append(peer)
                known.add(address)
        self._lookup_peers = keep

    def notify_lookupd(self, entity: Topic | Channel) -> None:
        """A topic or channel was created or deleted (see LookupPeer.notify)."""
        for peer in self._lookup_peers:
            peer.notify(entity)

    # ---------------------------------------------------------------- the one ticker

    def _all_channels(self) -> list:
        return [channel for topic in self.topics.values() for channel in topic.channels.values()]

    def _schedule_tick(self) -> None:
        self._ticker = self.loop.call_later(self.options.queue_scan_interval_ms / 1000.0, self._tick)

    def _tick(self) -> None:
        if not self.running:
            return
        now = self.now()
        try:
            self._queue_scan.tick(now, self.now)
            for topic in list(self.topics.values()):
                topic.backend.maybe_sync()
                for channel in list(topic.channels.values()):
                    channel.backend.maybe_sync()
            for client in list(self.clients.values()):
                interval = client.heartbeat_interval
                if interval <= 0 or client.closed:
                    continue
                if now - client.last_read > 2 * interval:
                    log.info("%r: no data for %.1fs, closing", client, now - client.last_read)
                    client.close()
                elif now >= client.next_heartbeat:
                    client.next_heartbeat = now + interval
                    client.send_heartbeat()
        finally:
            self._schedule_tick()
