"""The lean measurement peer: a fast fake nsqd that makes client cost visible on a small machine.

It speaks just enough of nsqd's TCP protocol V2 for the benchmark clients (IDENTIFY, SUB, RDY, FIN,
REQ, TOUCH, NOP, CLS, PUB, MPUB, DPUB) and enough of its HTTP API for the harness (/ping, /info,
/stats?format=json, /topic/{create,delete}, /channel/{create,delete}). What it leaves out on purpose:

- PUB/MPUB/DPUB are acknowledged at once; bodies are counted (MPUB bodies are walked, so a malformed
  batch is caught) but not stored. A topic remembers one body, which is what its channels deliver.
- Channels stream pre-encoded message frames with ids ``%016x`` of a counter while a client's
  in-flight count is below its RDY; FIN/REQ are matched against the in-flight set, so the counters
  prove every message was FINed exactly once (``finish_count``, ``fin_failed_count``).
- No TLS, compression, auth, message timeouts or deferred delivery (IDENTIFY answers false to all).

Run it as its own process: ``python -m bench.peer`` prints one JSON line with the bound ports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import struct
import sys
import time
from collections import deque

from .peer_http import serve_http

_INT32 = struct.Struct(">l")
_FRAME_HEADER = struct.Struct(">ll")
_MESSAGE_PREFIX = struct.Struct(">llqH")  # size, frame type, timestamp, attempts
VERSION = "1.3.0-bench-peer"
MAX_RDY_COUNT = 2500
HEARTBEAT_INTERVAL_S = 15.0


def response_frame(data: bytes) -> bytes:
    return _FRAME_HEADER.pack(len(data) + 4, 0) + data


def error_frame(data: bytes) -> bytes:
    return _FRAME_HEADER.pack(len(data) + 4, 1) + data


OK_FRAME = response_frame(b"OK")
CLOSE_WAIT_FRAME = response_frame(b"CLOSE_WAIT")
HEARTBEAT_FRAME = response_frame(b"_heartbeat_")


class Channel:
    """Fresh messages are a counter (``depth``); only in-flight ids are materialised."""

    def __init__(self, topic: "Topic", name: str) -> None:
        self.topic = topic
        self.name = name
        self.depth = 0
        self.message_count = 0
        self.next_seq = 0
        self.requeued: deque[tuple[bytes, int]] = deque()
        self.in_flight: dict[bytes, int] = {}  # id -> attempts
        self.finish_count = 0
        self.fin_failed_count = 0
        self.requeue_count = 0
        self.clients: set[PeerProtocol] = set()

    def put(self, count: int) -> None:
        self.depth += count
        self.message_count += count

    @property
    def available(self) -> int:
        return self.depth + len(self.requeued)

    def take(self, n: int) -> bytes:
        """Up to ``n`` message frames, redeliveries first; their ids become in flight."""
        body = self.topic.body
        now = time.time_ns()
        parts = []
        in_flight = self.in_flight
        while n and self.requeued:
            mid, attempts = self.requeued.popleft()
            in_flight[mid] = attempts
            parts.append(_MESSAGE_PREFIX.pack(len(body) + 30, 2, now, attempts) + mid + body)
            n -= 1
        fresh = min(n, self.depth)
        if fresh:
            prefix = _MESSAGE_PREFIX.pack(len(body) + 30, 2, now, 1)
            start = self.next_seq
            ids = [b"%016x" % seq for seq in range(start, start + fresh)]
            in_flight.update(dict.fromkeys(ids, 1))
            self.next_seq = start + fresh
            self.depth -= fresh
            parts.append(prefix + (body + prefix).join(ids) + body)
        return b"".join(parts)

    def stats(self) -> dict:
        return {
            "channel_name": self.name, "depth": self.available, "backend_depth": 0,
            "in_flight_count": len(self.in_flight), "deferred_count": 0,
            "message_count": self.message_count, "requeue_count": self.requeue_count,
            "timeout_count": 0, "client_count": len(self.clients), "clients": [],
            "paused": False, "finish_count": self.finish_count,
            "fin_failed_count": self.fin_failed_count,
        }


class Topic:
    def __init__(self, name: str) -> None:
        self.name = name
        self.depth = 0
        self.message_count = 0
        self.message_bytes = 0
        self.body = b"x" * 100
        self.channels: dict[str, Channel] = {}

    def put(self, count: int, nbytes: int, sample_body: bytes) -> None:
        self.message_count += count
        self.message_bytes += nbytes
        self.body = sample_body
        if self.channels:
            for channel in self.channels.values():
                channel.put(count)
        else:
            self.depth += count

    def channel(self, name: str) -> Channel:
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Channel(self, name)
            if len(self.channels) == 1 and self.depth:
                channel.put(self.depth)
                self.depth = 0
        return channel

    def stats(self) -> dict:
        return {
            "topic_name": self.name, "depth": self.depth, "backend_depth": 0,
            "message_count": self.message_count, "message_bytes": self.message_bytes,
            "paused": False, "channels": [c.stats() for c in self.channels.values()],
        }


class Peer:
    def __init__(self) -> None:
        self.topics: dict[str, Topic] = {}
        self.clients: set[PeerProtocol] = set()
        self.start_time = int(time.time())
        self.version = VERSION

    def topic(self, name: str) -> Topic:
        topic = self.topics.get(name)
        if topic is None:
            topic = self.topics[name] = Topic(name)
        return topic

    def stats(self, topic: str | None = None) -> dict:
        topics = [t.stats() for t in self.topics.values() if topic in (None, t.name)]
        return {"version": VERSION, "health": "OK", "start_time": self.start_time,
                "topics": topics, "producers": []}


class PeerProtocol(asyncio.Protocol):
    """One client connection. Commands are parsed in place from a bytearray; replies are batched
    into one write per ``data_received``."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.buf = bytearray()
        self.magic = False
        self.transport: asyncio.Transport | None = None
        self.channel: Channel | None = None
        self.rdy = 0
        self.in_flight = 0
        self.closing = False
        self.heartbeats = True

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.peer.clients.add(self)

    def connection_lost(self, exc) -> None:  # type: ignore[override]
        self.peer.clients.discard(self)
        channel = self.channel
        if channel is not None:
            channel.clients.discard(self)
            if not channel.clients and channel.in_flight:
                # like nsqd after msg_timeout, but at once: the messages go back to the channel
                channel.requeued.extend((mid, a + 1) for mid, a in channel.in_flight.items())
                channel.in_flight.clear()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.magic:
            if len(buf) < 4:
                return
            if bytes(buf[:4]) != b"  V2":
                self.transport.write(error_frame(b"E_BAD_PROTOCOL"))
                self.transport.close()
                return
            self.magic = True
            del buf[:4]
        out: list[bytes] = []
        pos = self._parse(buf, out)
        if pos:
            del buf[:pos]
        self._pump(out)
        if out:
            self.transport.write(b"".join(out))

    def _parse(self, buf: bytearray, out: list[bytes]) -> int:
        pos = 0
        find = buf.find
        channel = self.channel
        while True:
            end = find(b"\n", pos)
            if end < 0:
                return pos
            if buf[pos] == 70 and buf[pos + 1] == 73:  # b"FI": the hot path
                mid = bytes(buf[pos + 4:end])
                if channel is not None and channel.in_flight.pop(mid, None) is not None:
                    channel.finish_count += 1
                    self.in_flight -= 1
                else:
                    if channel is not None:
                        channel.fin_failed_count += 1
                    out.append(error_frame(b"E_FIN_FAILED FIN " + mid + b" failed"))
                pos = end + 1
                continue
            parts = bytes(buf[pos:end]).rstrip(b"\r").split(b" ")
            name = parts[0]
            if name in (b"PUB", b"MPUB", b"DPUB", b"IDENTIFY", b"AUTH"):
                if len(buf) < end + 5:
                    return pos
                (size,) = _INT32.unpack_from(buf, end + 1)
                if size <= 0 or size > 64 * 1024 * 1024:
                    return self._fatal(out, b"E_BAD_BODY invalid body size %d" % size)
                if len(buf) < end + 5 + size:
                    return pos
                body = bytes(buf[end + 5:end + 5 + size])
                pos = end + 5 + size
                if not self._body_command(name, parts, body, out):
                    return pos
                continue
            pos = end + 1
            if not self._simple_command(name, parts, out):
                return pos
            channel = self.channel

    def _fatal(self, out: list[bytes], error: bytes) -> int:
        out.append(error_frame(error))
        self.closing = True
        self.transport.write(b"".join(out))
        out.clear()
        self.transport.close()
        return len(self.buf)

    def _body_command(self, name: bytes, parts: list[bytes], body: bytes, out: list[bytes]) -> bool:
        if name == b"MPUB":
            count, sample = _walk_mpub(body)
            if count <= 0:
                self._fatal(out, b"E_BAD_BODY MPUB malformed body")
                return False
            self.peer.topic(parts[1].decode()).put(count, len(body) - 4 - 4 * count, sample)
            out.append(OK_FRAME)
        elif name in (b"PUB", b"DPUB"):
            self.peer.topic(parts[1].decode()).put(1, len(body), body)
            out.append(OK_FRAME)
        elif name == b"IDENTIFY":
            data = json.loads(body)
            interval = int(data.get("heartbeat_interval", 30000) or 30000)
            self.heartbeats = interval > 0
            if data.get("feature_negotiation"):
                out.append(response_frame(json.dumps({
                    "max_rdy_count": MAX_RDY_COUNT, "version": VERSION, "max_msg_timeout": 900000,
                    "msg_timeout": 60000, "tls_v1": False, "deflate": False, "deflate_level": 0,
                    "max_deflate_level": 6, "snappy": False, "sample_rate": 0,
                    "auth_required": False, "output_buffer_size": 16384,
                    "output_buffer_timeout": 250,
                }).encode()))
            else:
                out.append(OK_FRAME)
        else:  # AUTH
            self._fatal(out, b"E_AUTH_DISABLED AUTH disabled")
            return False
        return True

    def _simple_command(self, name: bytes, parts: list[bytes], out: list[bytes]) -> bool:
        channel = self.channel
        if name == b"RDY":
            self.rdy = min(int(parts[1]), MAX_RDY_COUNT)
        elif name == b"REQ":
            mid = parts[1]
            attempts = channel.in_flight.pop(mid, None) if channel else None
            if attempts is None:
                out.append(error_frame(b"E_REQ_FAILED REQ " + mid + b" failed"))
            else:
                self.in_flight -= 1
                channel.requeue_count += 1
                channel.requeued.append((mid, attempts + 1))
        elif name == b"SUB":
            topic = self.peer.topic(parts[1].decode())
            self.channel = topic.channel(parts[2].decode())
            self.channel.clients.add(self)
            out.append(OK_FRAME)
        elif name == b"CLS":
            self.closing = True
            out.append(CLOSE_WAIT_FRAME)
        elif name in (b"NOP", b"TOUCH"):
            pass
        else:
            self._fatal(out, b"E_INVALID invalid command " + name)
            return False
        return True

    def _pump(self, out: list[bytes]) -> None:
        channel = self.channel
        if channel is None or self.closing:
            return
        room = self.rdy - self.in_flight
        # refill in batches (an eighth of RDY) so that per-FIN writes do not become per-message
        # writes: the peer must stay cheaper than the client it measures; RDY is still honoured
        if room >= max(1, self.rdy >> 3) and channel.available:
            n = min(room, channel.available)
            out.append(channel.take(n))
            self.in_flight += n

    def send_heartbeat(self) -> None:
        if self.heartbeats and self.transport is not None and not self.transport.is_closing():
            self.transport.write(HEARTBEAT_FRAME)


def _walk_mpub(body: bytes) -> tuple[int, bytes]:
    """(message count, first body) of an MPUB payload, or (-1, b"") if the sizes don't add up."""
    if len(body) < 4:
        return -1, b""
    (count,) = _INT32.unpack_from(body, 0)
    offset = 4
    unpack = _INT32.unpack_from
    total = len(body)
    first = b""
    for i in range(count):
        if offset + 4 > total:
            return -1, b""
        (size,) = unpack(body, offset)
        if size <= 0:
            return -1, b""
        if i == 0:
            first = body[offset + 4:offset + 4 + size]
        offset += 4 + size
    if offset != total:
        return -1, b""
    return count, first


async def _heartbeat_loop(peer: Peer) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_INTERVAL_S)
        for client in list(peer.clients):
            client.send_heartbeat()


async def serve(tcp_address: str, http_address: str) -> None:
    peer = Peer()
    loop = asyncio.get_running_loop()
    host, port = tcp_address.rsplit(":", 1)
    tcp = await loop.create_server(lambda: PeerProtocol(peer), host, int(port))
    host, port = http_address.rsplit(":", 1)
    http = await asyncio.start_server(lambda r, w: serve_http(peer, r, w), host, int(port))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    heartbeats = asyncio.ensure_future(_heartbeat_loop(peer))
    print(json.dumps({"tcp_port": tcp.sockets[0].getsockname()[1],
                      "http_port": http.sockets[0].getsockname()[1]}), flush=True)
    await stop.wait()
    heartbeats.cancel()
    tcp.close()
    http.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__.split("\n")[0])
    parser.add_argument("--tcp-address", default="127.0.0.1:0")
    parser.add_argument("--http-address", default="127.0.0.1:0")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.tcp_address, args.http_address))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
