"""The measurement peer's HTTP API: the few nsqd endpoints the harness calls.

A tiny HTTP/1.1 server answering one request per connection: /ping, /info, /stats (nsqd's JSON
shape plus the peer's FIN counters), /topic/create, /topic/delete, /channel/create,
/channel/delete. Errors use nsqd's ``{"message": ...}`` bodies and status codes.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:  # pragma: no cover
    from .peer import Peer


def handle_http(peer: "Peer", method: str, target: str) -> tuple[int, bytes]:
    url = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    path = url.path
    if path == "/ping":
        return 200, b"OK"
    if path == "/info":
        return 200, json.dumps({"version": peer.version}).encode()
    if path == "/stats":
        return 200, json.dumps(peer.stats(query.get("topic"))).encode()
    topic_name = query.get("topic")
    if not topic_name:
        return 400, b'{"message":"MISSING_ARG_TOPIC"}'
    if path == "/topic/create":
        peer.topic(topic_name)
    elif path == "/topic/delete":
        if peer.topics.pop(topic_name, None) is None:
            return 404, b'{"message":"TOPIC_NOT_FOUND"}'
    elif path in ("/channel/create", "/channel/delete"):
        channel = query.get("channel")
        if not channel:
            return 400, b'{"message":"MISSING_ARG_CHANNEL"}'
        topic = peer.topic(topic_name)
        if path == "/channel/create":
            topic.channel(channel)
        elif topic.channels.pop(channel, None) is None:
            return 404, b'{"message":"CHANNEL_NOT_FOUND"}'
    else:
        return 404, b'{"message":"NOT_FOUND"}'
    return 200, b""


async def serve_http(peer: "Peer", reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        status, body = handle_http(peer, method, target)
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n" % (status, len(body)) + body)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()
