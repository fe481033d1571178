"""nsq-stat's polls: ``/stats`` of every nsqd at once, the nsqds found through nsqlookupd.

Each poll asks every nsqlookupd's ``/nodes`` (parsed by :mod:`nsqcli.cli.lookupd_nodes`) and
adds the nsqds it lists to those given; an nsqd stays known once seen, so one that stops
answering (and that nsqlookupd then stops listing) is shown down instead of vanishing. Then
every known nsqd's ``/stats`` is fetched concurrently, each within the two timeouts (connect,
whole request) of the :class:`~nsqcli.cli.nsq_http.HttpSession`. A failure is an
:class:`~nsqcli.stat.model.Answer` with an error text, never an exception.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from nsqcli.cli.lookupd_nodes import parse_nodes
from nsqcli.cli.nsq_http import RequestFailed
from nsqcli.lib.lookupd import LookupdError
from nsqcli.stat.model import Answer, parse_stats


def _same_as_lookupd(address: str) -> str:
    """``http://host:port/`` -> ``host:port``, as nsqlookupd names the nsqd (so it is polled
    once); other URLs (a path, https) stay as given."""
    if address.startswith("http://"):
        rest = address[len("http://"):].rstrip("/")
        if rest and not any(c in rest for c in "/?#"):
            return rest
    return address


def stats_query(topic: str | None, channel: str | None) -> list[tuple[str, str]]:
    """``/stats`` as JSON, without clients or memory figures, narrowed as nsqd can."""
    query = [("format", "json"), ("include_clients", "false"), ("include_mem", "false")]
    return query + [(name, value) for name, value in (("topic", topic), ("channel", channel))
                    if value]


class Poller:
    """Polls a cluster; ``poll()`` -> (nsqd answers, [(lookupd, error or None)])."""

    def __init__(self, session: Any, nsqd_addresses: list[str], lookupd_addresses: list[str],
                 topic: str | None, channel: str | None,
                 clock: Callable[[], float] | None = None) -> None:
        self.session = session  # an nsqcli.cli.nsq_http.HttpSession
        # known so far, in discovery order
        self.nsqds = list(dict.fromkeys(_same_as_lookupd(a) for a in nsqd_addresses))
        self.lookupds = list(dict.fromkeys(lookupd_addresses))
        self.topic = topic
        self.channel = channel
        self._clock = clock or asyncio.get_running_loop().time

    async def poll(self) -> tuple[list[Answer], list[tuple[str, str | None]]]:
        lookupds = await asyncio.gather(*(self._discover(a) for a in self.lookupds))
        answers = await asyncio.gather(*(self._stats(a) for a in self.nsqds))
        return list(answers), list(zip(self.lookupds, lookupds))

    async def _discover(self, lookupd: str) -> str | None:
        """Adds the nsqds ``lookupd`` lists; returns its error, or None."""
        try:
            reply = await self.session.get(lookupd, "/nodes", daemon="nsqlookupd")
            nodes = parse_nodes(reply.body, reply.status)
        except (RequestFailed, LookupdError) as exc:  # LookupdError: not a /nodes answer
            return str(exc)
        for node in nodes:
            if node.http_address and node.http_address not in self.nsqds:
                self.nsqds.append(node.http_address)
        return None

    async def _stats(self, nsqd: str) -> Answer:
        try:
            reply = await self.session.get(nsqd, "/stats", stats_query(self.topic, self.channel))
        except RequestFailed as exc:
            return Answer(nsqd, self._clock(), error=str(exc))
        at = self._clock()
        if not reply.ok:
            return Answer(nsqd, at, error=reply.describe())
        try:
            return Answer(nsqd, at, parse_stats(reply.body, self.topic, self.channel))
        except ValueError as exc:  # not nsqd's /stats shape
            return Answer(nsqd, at, error=str(exc))
