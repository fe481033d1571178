"""HTTP requests to nsqd and nsqlookupd (their v1 API), for the tools that administer or watch a
cluster through it.

* :class:`HttpSession` sends one request with nsqadmin's two timeouts (connect, whole request)
  and returns the :class:`Reply` (status and body, error statuses included); no answer at all
  (refused, timed out, not HTTP) raises :class:`RequestFailed` with a short text.
* :meth:`Reply.message` is the error text nsqd and nsqlookupd put in a body
  (``{"message": "TOPIC_NOT_FOUND"}``, or ``status_txt`` of a pre-1.0 wrapped answer), and
  :func:`v1_data` the JSON of a successful one, unwrapped.
* :func:`parse_names` reads ``/topics`` and ``/channels`` of nsqlookupd; :func:`stats_topics`
  the topics and their channels in nsqd's ``/stats?format=json``.

An address is ``host:port`` or an ``http(s)://`` URL; a URL's path is a prefix of every request
path (a pynsq-style ``.../lookup`` suffix excepted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import urlencode, urlsplit

from nsqcli.cli.exit_codes import error_text
from nsqcli.lib.lookupd import ACCEPT_HEADER, LookupdError


@dataclass(frozen=True)
class Timeouts:
    """Seconds; the defaults are nsqadmin's and nsq_stat's (2 s, 5 s)."""

    connect: float = 2.0
    request: float = 5.0


class RequestFailed(Exception):
    """No HTTP answer came (connection refused, timeout, not an HTTP server)."""


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # Recursion: "[[[[..." too deep
        return None


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return self.status == 200

    def message(self) -> str:
        """nsqd's error text (``TOPIC_NOT_FOUND``), or the start of a body that is not nsqd's."""
        data = _decode(self.body)
        if isinstance(data, dict):
            for key in ("message", "status_txt"):
                if isinstance(data.get(key), str):
                    return data[key]
        return self.body[:100].decode("utf-8", "replace").strip()

    def describe(self) -> str:
        """``HTTP 500 INTERNAL_ERROR``: the status and nsqd's text, for a one-line error."""
        message = self.message()
        return f"HTTP {self.status}" + (f" {message}" if message else "")


def v1_data(reply: Reply) -> Any:
    """The JSON of a successful v1 answer (a pre-1.0 ``{"status_code", "data"}`` is unwrapped);
    :class:`LookupdError` for an error status or a body that is not JSON."""
    if not reply.ok:
        raise LookupdError(reply.describe())
    data = _decode(reply.body)
    if data is None:
        raise LookupdError(f"HTTP {reply.status} response is not JSON: {reply.body[:100]!r}")
    if isinstance(data, dict) and "status_code" in data and "data" in data:
        if data["status_code"] != 200:
            raise LookupdError(f"HTTP {data['status_code']} {data.get('status_txt', '')}".strip())
        data = data["data"]
    return data


def parse_names(body: bytes | str, key: str, status: int = 200) -> list[str]:
    """The names of a ``{"topics": [...]}`` / ``{"channels": [...]}`` answer of nsqlookupd (v1 or
    pre-1.0 wrapped); :class:`LookupdError` for anything else."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "replace")
    data = v1_data(Reply(status, raw))
    names = data.get(key) if isinstance(data, dict) else None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise LookupdError(f"/{key} response has no {key[:-1]} list: {str(data)[:100]}")
    return names


def stats_topics(reply: Reply) -> dict[str, list[str]]:
    """topic -> its channels, from nsqd's ``/stats?format=json``."""
    data = v1_data(reply)
    if not isinstance(data, dict) or "topics" not in data:
        raise LookupdError(f"/stats response has no topic list: {str(data)[:100]}")
    topics = data["topics"] or []  # null: nsqd's answer when the topic filter names no topic
    if not isinstance(topics, list):
        raise LookupdError(f"/stats response has no topic list: {str(data)[:100]}")
    found: dict[str, list[str]] = {}
    for topic in topics:
        name = topic.get("topic_name") if isinstance(topic, dict) else None
        if not isinstance(name, str):
            raise LookupdError(f"/stats topic without a topic_name: {str(topic)[:100]}")
        channels = topic.get("channels") or []
        found[name] = [c["channel_name"] for c in channels
                       if isinstance(c, dict) and isinstance(c.get("channel_name"), str)]
    return found


def url(address: str, path: str, query: Iterable[tuple[str, str]] = ()) -> str:
    """``http://host:port/path?query`` for an address given as ``host:port`` or a URL."""
    base = address if "://" in address else "http://" + address
    scheme, netloc, prefix, _, _ = urlsplit(base)
    prefix = prefix.rstrip("/")
    if prefix.endswith("/lookup"):  # a lookupd address written for pynsq
        prefix = prefix[: -len("/lookup")]
    encoded = urlencode(list(query))
    return f"{scheme}://{netloc}{prefix}{path}" + (f"?{encoded}" if encoded else "")


class HttpSession:
    """Requests on the running event loop (tornado's client); :meth:`close` when done."""

    def __init__(self, timeouts: Timeouts = Timeouts(), user_agent: str | None = None,
                 max_clients: int = 1024, trace: Callable[[str], None] | None = None) -> None:
        from tornado.httpclient import AsyncHTTPClient

        self.timeouts = timeouts
        self._trace = trace  # told each request and its answer (the tools' -v)
        self._headers = {"Accept": ACCEPT_HEADER}
        if user_agent:
            self._headers["User-Agent"] = user_agent
        # its own instance, with room for every nsqd of a large cluster at once: a request
        # waiting in tornado's queue would time out after the connect timeout
        self._client = AsyncHTTPClient(force_instance=True, max_clients=max_clients)

    async def request(self, method: str, address: str, path: str,
                      query: Iterable[tuple[str, str]] = (), daemon: str = "nsqd") -> Reply:
        from tornado.httpclient import HTTPRequest

        target = url(address, path, query)
        request = HTTPRequest(
            target, method=method, headers=self._headers,
            body=b"" if method in ("POST", "PUT") else None,
            connect_timeout=self.timeouts.connect, request_timeout=self.timeouts.request,
            follow_redirects=False)
        try:
            response = await self._client.fetch(request, raise_error=False)
            if response.code == 599:  # tornado's "no HTTP answer": its error says why
                raise RequestFailed(_failure_text(response.error, daemon))
        except Exception as exc:  # noqa: BLE001 - DNS, refused, a bad URL: no answer
            failure = exc if isinstance(exc, RequestFailed) else RequestFailed(
                _failure_text(exc, daemon))
            if self._trace:
                self._trace(f"{method} {target}: {failure}")
            raise failure from exc
        reply = Reply(response.code, response.body or b"")
        if self._trace:
            self._trace(f"{method} {target}: " + ("HTTP 200" if reply.ok else reply.describe()))
        return reply

    async def get(self, address: str, path: str, query: Iterable[tuple[str, str]] = (),
                  daemon: str = "nsqd") -> Reply:
        return await self.request("GET", address, path, query, daemon)

    async def post(self, address: str, path: str, query: Iterable[tuple[str, str]] = (),
                   daemon: str = "nsqd") -> Reply:
        return await self.request("POST", address, path, query, daemon)

    def close(self) -> None:
        self._client.close()


def _failure_text(exc: BaseException | None, daemon: str) -> str:
    if exc is None:
        return "no answer"
    text = error_text(exc, daemon)
    if type(exc).__name__ == "HTTPTimeoutError":  # "Timeout while connecting" / "during request"
        return text.lower().replace("timeout", "timed out", 1)
    return text
