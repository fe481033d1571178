"""One HTTP GET on asyncio streams, for the Reader's nsqlookupd queries.

Tornado's HTTP client keeps the socket of a cancelled fetch open until the answer comes, so a
Reader closed while a lookupd query was in flight left that socket to the garbage collector
(a ``ResourceWarning``, and a file descriptor held until then). Here a request that is
cancelled, times out or fails closes its socket at once.

The request is HTTP/1.0 (the answer ends when the server closes the connection, as nsqlookupd's
Go server does for 1.0 clients), which is all a lookupd query needs; ``https://`` URLs verify
the server's certificate with the system's trust store.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["HTTPGetError", "http_get"]

#: nsqlookupd's answers are small; a peer streaming more than this is not a lookupd.
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class HTTPGetError(Exception):
    """No usable HTTP answer: refused, timed out, closed early, or not HTTP."""


async def http_get(url: str, headers: Mapping[str, str] | None = None,
                   connect_timeout: float = 1.0, request_timeout: float = 2.0,
                   max_bytes: int = MAX_ANSWER_BYTES) -> tuple[int, bytes]:
    """``(status, body)`` of ``GET url``; raises :class:`HTTPGetError` when no answer came."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HTTPGetError(f"not an http(s) URL: {url!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port,
                                    ssl=ssl.create_default_context() if secure else None),
            connect_timeout)
    except asyncio.TimeoutError:
        raise HTTPGetError(f"Timeout while connecting ({connect_timeout:g}s)") from None
    except OSError as exc:
        raise HTTPGetError(f"{type(exc).__name__}: {exc}") from exc
    try:
        lines = [f"GET {target} HTTP/1.0", f"Host: {parts.netloc}", "Connection: close",
                 *(f"{name}: {value}" for name, value in (headers or {}).items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            answer = await asyncio.wait_for(_read_to_end(reader, max_bytes), request_timeout)
        except asyncio.TimeoutError:
            raise HTTPGetError(f"Timeout during request ({request_timeout:g}s)") from None
        except OSError as exc:
            raise HTTPGetError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        writer.close()  # also on cancellation: the socket does not outlive the request
    return parse_answer(answer)


async def _read_to_end(reader: asyncio.StreamReader, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await reader.read(65536):
        size += len(chunk)
        if size > max_bytes:
            raise HTTPGetError(f"answer larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_answer(answer: bytes) -> tuple[int, bytes]:
    """``(status, body)`` of a whole HTTP/1.x answer (a body cut short of its Content-Length
    is an error, not a shorter body)."""
    head, separator, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    fields = status_line.split(None, 2)
    if not separator or len(fields) < 2 or not fields[0].startswith(b"HTTP/") \
            or not fields[1].isdigit():
        raise HTTPGetError("the answer is not HTTP" if answer else "closed without an answer")
    for line in header_lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value)
            if len(body) < length:
                raise HTTPGetError(f"answer cut short ({len(body)} of {length} bytes)")
            body = body[:length]
    return int(fields[1]), body
