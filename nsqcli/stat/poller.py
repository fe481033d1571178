"""nsq-stat's polls: ``/stats`` of every nsqd at once, the nsqds found through nsqlookupd.

Each poll asks every nsqlookupd's ``/nodes`` (parsed by :mod:`nsqcli.cli.lookupd_nodes`) and
adds the nsqds it lists to those given; an nsqd stays known once seen, so one that stops
answering (and that nsqlookupd then stops listing) is shown down instead of vanishing. Then
every known nsqd's ``/stats`` is fetched concurrently, each within Go's two timeouts (connect,
whole request), on tornado's HTTP client as :mod:`nsqcli.lib.lookupd` does. A failure is an
:class:`~nsqcli.stat.model.Answer` with an error text, never an exception.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable
from urllib.parse import urlencode

from nsqcli.cli.exit_codes import error_text
from nsqcli.cli.lookupd_nodes import nodes_url, parse_nodes
from nsqcli.lib.lookupd import ACCEPT_HEADER, LookupdError
from nsqcli.stat.model import Answer, parse_stats

#: connections at once (tornado queues the others, and their wait counts against the timeouts)
MAX_CLIENTS = 100


class FetchError(Exception):
    """An HTTP GET that gave no 200 answer; the text says why, in a few words."""


def stats_url(address: str, topic: str | None, channel: str | None) -> str:
    """nsqd's ``/stats`` URL (JSON, no clients, no memory figures), narrowed as nsqd can."""
    base = address if "://" in address else f"http://{address}"
    params = {"format": "json", "include_clients": "false", "include_mem": "false"}
    if topic:
        params["topic"] = topic
    if channel:
        params["channel"] = channel
    return f"{base.rstrip('/')}/stats?{urlencode(params)}"


def _same_as_lookupd(address: str) -> str:
    """``http://host:port/`` -> ``host:port``, as nsqlookupd names the nsqd (so it is polled
    once); other URLs (a path, https) stay as given."""
    if address.startswith("http://"):
        rest = address[len("http://"):].rstrip("/")
        if rest and not any(c in rest for c in "/?#"):
            return rest
    return address


class Poller:
    """Polls a cluster; ``poll()`` -> (nsqd answers, [(lookupd, error or None)])."""

    def __init__(self, nsqd_addresses: list[str], lookupd_addresses: list[str],
                 topic: str | None, channel: str | None, connect_timeout: float,
                 request_timeout: float, clock: Callable[[], float] | None = None) -> None:
        from tornado.httpclient import AsyncHTTPClient

        # known so far, in discovery order
        self.nsqds = list(dict.fromkeys(_same_as_lookupd(a) for a in nsqd_addresses))
        self.lookupds = list(dict.fromkeys(lookupd_addresses))
        self.topic = topic
        self.channel = channel
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self._clock = clock or asyncio.get_running_loop().time
        self._client: Any = AsyncHTTPClient(force_instance=True, max_clients=MAX_CLIENTS)

    async def poll(self) -> tuple[list[Answer], list[tuple[str, str | None]]]:
        lookupds = await asyncio.gather(*(self._discover(a) for a in self.lookupds))
        answers = await asyncio.gather(*(self._stats(a) for a in self.nsqds))
        return list(answers), list(zip(self.lookupds, lookupds))

    async def _discover(self, lookupd: str) -> str | None:
        """Adds the nsqds ``lookupd`` lists; returns its error, or None."""
        try:
            status, body = await self.get(nodes_url(lookupd), "nsqlookupd")
            nodes = parse_nodes(body, status)
        except (FetchError, LookupdError) as exc:  # LookupdError: not nsqlookupd's /nodes shape
            return str(exc)
        for node in nodes:
            if node.http_address and node.http_address not in self.nsqds:
                self.nsqds.append(node.http_address)
        return None

    async def _stats(self, nsqd: str) -> Answer:
        try:
            _, body = await self.get(stats_url(nsqd, self.topic, self.channel), "nsqd")
            return Answer(nsqd, self._clock(), parse_stats(body, self.topic, self.channel))
        except (FetchError, ValueError) as exc:  # ValueError: not nsqd's /stats shape
            return Answer(nsqd, self._clock(), error=str(exc))

    async def get(self, url: str, daemon: str) -> tuple[int, bytes]:
        """(200, body) of a GET; FetchError for anything else (refused, timed out, HTTP 500)."""
        from tornado.httpclient import HTTPClientError, HTTPRequest

        request = HTTPRequest(url, headers={"Accept": ACCEPT_HEADER}, follow_redirects=False,
                              connect_timeout=self.connect_timeout,
                              request_timeout=self.request_timeout)
        try:
            response = await self._client.fetch(request, raise_error=False)
        except HTTPClientError as exc:  # 599: timeouts, a closed connection
            raise FetchError(exc.message or str(exc)) from None
        except OSError as exc:
            raise FetchError(error_text(exc, daemon)) from None
        if response.code != 200:
            text = (response.body or b"").decode("utf-8", "replace").strip()[:100]
            raise FetchError(f"HTTP {response.code}" + (f": {text}" if text else ""))
        return response.code, response.body or b""

    def close(self) -> None:
        self._client.close()
