"""Topic discovery for nsq-to-file: the union of ``/topics`` over every nsqlookupd.

As the Go tool: every lookupd is queried concurrently; if any of them fails the whole refresh is
skipped (an incomplete list must not look like "no new topics"); topics are never removed.
"""

from __future__ import annotations

import asyncio
import re
from typing import Iterable

from nsqcli.cli.nsq_http import parse_names
from nsqcli.lib.lookupd import ACCEPT_HEADER, LookupdError, lookup_url, lookupd_get


def topics_url(address: str) -> str:
    """``http://host:port/topics`` for a lookupd address (``host:port`` or a URL)."""
    base, _, query = lookup_url(address, "-", path="/topics").partition("?")
    params = [p for p in query.split("&") if p and not p.startswith("topic=")]
    return base + ("?" + "&".join(params) if params else "")


def parse_topics(body: bytes | str) -> list[str]:
    """Topic names from a ``/topics`` answer (v1 ``{"topics": [...]}`` or pre-1.0 wrapped)."""
    return parse_names(body, "topics")


async def query_topics(addresses: Iterable[str], connect_timeout: float = 2.0,
                       request_timeout: float = 5.0) -> list[str]:
    """Sorted union of every lookupd's topics; raises :class:`LookupdError` if any one fails.

    Cancelling it (nsq-to-file stopping mid-refresh) closes every query's socket at once.
    """
    headers = {"Accept": ACCEPT_HEADER}

    async def one(address: str) -> list[str]:
        try:
            status, body = await lookupd_get(topics_url(address), headers, connect_timeout,
                                             request_timeout)
            if status != 200:
                raise LookupdError(f"HTTP {status}")
            return parse_topics(body)
        except LookupdError as exc:  # name the lookupd that failed
            raise LookupdError(f"lookupd {address}: {exc}") from None

    found: set[str] = set()
    for topics in await asyncio.gather(*(one(a) for a in addresses)):
        found.update(topics)
    return sorted(found)


class TopicFilter:
    """``--topic-pattern``: an unanchored regular expression (as Go's regexp.MatchString)."""

    def __init__(self, pattern: str) -> None:
        try:
            self.regex = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid --topic-pattern {pattern!r}: {exc}") from None

    def __call__(self, topic: str) -> bool:
        return self.regex.search(topic) is not None
