"""Registration with nsqlookupd over its TCP protocol V1 (nsqd/lookup.go, nsqd/lookup_peer.go).

Per lookupd address one task sends, in order: magic ``"  V1"``, ``IDENTIFY`` (JSON body), a
``REGISTER`` for every topic/channel (on each (re)connect), then ``REGISTER``/``UNREGISTER`` as
topics and channels come and go, and ``PING`` on a ticker (every 15 s from the start, busy or
not). Each command is answered with ``[int32 size][data]`` within nsqd's 1 s deadline. Like
nsqd, nothing watches the idle connection: a command that fails (the first one after lookupd went
away) drops it, and the next command (at the latest the next PING) reconnects and registers
everything again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from struct import Struct
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from nsqcli.lib.protocol.constants import MAGIC_V1

from .options import VERSION, parse_address

from .channel import Channel

if TYPE_CHECKING:
    from .server import NSQD
    from .topic import Topic

log = logging.getLogger("nsqcli.broker.nsqd.lookup")

_INT32 = Struct(">l")
DIAL_TIMEOUT = 1.0
IO_TIMEOUT = 1.0  # nsqd's read and write deadlines


def register_command(topic: str, channel: str | None, register: bool = True) -> bytes:
    name = b"REGISTER" if register else b"UNREGISTER"
    line = name + b" " + topic.encode()
    if channel:
        line += b" " + channel.encode()
    return line + b"\n"


def registration(entity: "Topic | Channel") -> bytes:
    """REGISTER, or UNREGISTER once it is being deleted, for a topic or a channel."""
    if isinstance(entity, Channel):
        return register_command(entity.topic_name, entity.name, not entity.exiting)
    return register_command(entity.name, None, not entity.exiting)


class LookupPeer:
    def __init__(self, nsqd: "NSQD", address: str) -> None:
        self.nsqd = nsqd
        self.address = address
        self.info: dict = {}
        self._queue: asyncio.Queue["Topic | Channel"] = asyncio.Queue()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None

    @property
    def connected(self) -> bool:
        return self._writer is not None

    @property
    def http_address(self) -> str:
        host = self.info.get("broadcast_address")
        port = self.info.get("http_port")
        if not host or not port:
            return ""
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> None:
        self._task = self.nsqd.loop.create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        # Before Python 3.12, asyncio.wait_for can swallow a cancel that races with its inner
        # future finishing (the task then runs on): cancel until the task is really done.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        self._disconnect()

    def notify(self, entity: "Topic | Channel") -> None:
        """A topic or channel was created or deleted. As in nsqd's lookupLoop, whether that is a
        REGISTER or an UNREGISTER is decided when the command is sent, from whether it is being
        deleted by then: a channel created and deleted at once is unregistered twice."""
        self._queue.put_nowait(entity)

    async def _run(self) -> None:
        loop = self.nsqd.loop
        interval = self.nsqd.options.lookupd_ping_interval_ms / 1000.0
        next_ping = loop.time() + interval
        await self._command(None)  # connect at start, as nsqd does
        while True:
            try:
                entity = await asyncio.wait_for(self._queue.get(), max(0.0, next_ping - loop.time()))
                cmd = registration(entity)
            except asyncio.TimeoutError:
                cmd = b"PING\n"
                next_ping += interval
                if next_ping <= loop.time():  # late: a ticker drops the ticks it missed
                    next_ping = loop.time() + interval
            await self._command(cmd)

    async def _command(self, cmd: bytes | None) -> bytes | None:
        try:
            if not self.connected:
                await self._connect()
            if cmd is None:
                return None
            return await self._send(cmd)
        except (OSError, asyncio.TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            log.info("LOOKUPD(%s): %r failed - %s", self.address, cmd, exc)
            self._disconnect()
            return None

    async def _connect(self) -> None:
        host, port = parse_address(self.address)
        self._reader, self._writer = reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), DIAL_TIMEOUT)
        writer.write(MAGIC_V1)
        identity = {
            "broadcast_address": self.nsqd.options.broadcast_address,
            "hostname": socket.gethostname(),
            "http_port": self.nsqd.http_port,
            "tcp_port": self.nsqd.tcp_port,
            "version": VERSION,
        }
        body = json.dumps(identity, separators=(",", ":")).encode()
        response = await self._send(b"IDENTIFY\n" + _INT32.pack(len(body)) + body)
        if response == b"E_INVALID":
            raise ValueError("lookupd refused IDENTIFY")
        self.info = json.loads(response)
        if not isinstance(self.info, dict):
            raise ValueError(f"bad IDENTIFY response {response!r}")
        for topic in list(self.nsqd.topics.values()):
            if not topic.channels:
                await self._send(register_command(topic.name, None))
            for channel in list(topic.channels):
                await self._send(register_command(topic.name, channel))

    async def _send(self, cmd: bytes) -> bytes:
        writer, reader = self._writer, self._reader
        if writer is None or reader is None:
            raise OSError("not connected")
        writer.write(cmd)
        await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
        header = await asyncio.wait_for(reader.readexactly(4), IO_TIMEOUT)
        (size,) = _INT32.unpack(header)
        if size < 0 or size > self.nsqd.options.max_body_size:
            raise ValueError(f"bad lookupd response size {size}")
        return await asyncio.wait_for(reader.readexactly(size), IO_TIMEOUT)

    def _disconnect(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = None
        self._reader = None


async def fetch_lookupd_channels(topic: str, http_addresses: list[str]) -> list[str]:
    """The channels any lookupd knows for ``topic`` (errors are ignored, like nsqd's warning)."""
    client = AsyncHTTPClient()
    names: list[str] = []
    for address in http_addresses:
        url = f"http://{address}/channels?" + urlencode({"topic": topic})
        try:
            response = await client.fetch(HTTPRequest(url, connect_timeout=2.0, request_timeout=5.0))
            data = json.loads(response.body)
        except (HTTPClientError, OSError, ValueError) as exc:
            log.warning("failed to query nsqlookupd %s for channels of %s - %s", address, topic, exc)
            continue
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]  # pre-1.0 lookupd wraps its answer
        for name in (data.get("channels") or []) if isinstance(data, dict) else []:
            if isinstance(name, str) and name not in names:
                names.append(name)
    return names
