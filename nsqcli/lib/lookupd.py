"""nsqlookupd queries: which nsqds produce a topic.

* :func:`lookup_url` normalises an address as pynsq does: ``http://`` added when there is no
  scheme, path ``/lookup`` when there is none, existing query parameters kept, ``topic=`` set.
* :func:`parse_producers` understands nsqlookupd v1 responses (``{"producers": [...]}``) and the
  pre-1.0 wrapped ones (``{"status_code": 200, "data": {"producers": [...]}}``), and takes
  ``broadcast_address`` (falling back to ``address``) with ``tcp_port``.
* :class:`LookupdPoller` queries *every* lookupd concurrently and returns the union of producers;
  a lookupd that fails is logged once when it starts failing and once when it recovers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .error_text import error_text
from .http_get import HTTPGetError, http_get
from .protocol.errors import Error

logger = logging.getLogger(__name__)

__all__ = [
    "ACCEPT_HEADER", "LookupdError", "LookupResult", "LookupdPoller", "lookup_url",
    "parse_producers",
]

#: Asks nsqlookupd >= 1.0 for the unwrapped v1 response shape.
ACCEPT_HEADER = "application/vnd.nsq; version=1.0"


class LookupdError(Error):
    """A lookupd answered something that is not a producer list (or did not answer)."""


def lookup_url(endpoint: str, topic: str, path: str = "/lookup") -> str:
    """The full query URL for ``topic`` on the lookupd at ``endpoint`` (``host:port`` or a URL)."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ValueError(f"invalid lookupd HTTP address {endpoint!r}")
    endpoint = endpoint.strip()
    if "://" not in endpoint:
        endpoint = "http://" + endpoint
    scheme, netloc, url_path, query, fragment = urlsplit(endpoint)
    if not netloc:
        raise ValueError(f"invalid lookupd HTTP address {endpoint!r}: no host")
    if not url_path or url_path == "/":
        url_path = path
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "topic"]
    params.append(("topic", topic))
    return urlunsplit((scheme, netloc, url_path, urlencode(params), fragment))


async def lookupd_get(url: str, headers: dict[str, str], connect_timeout: float,
                      request_timeout: float) -> tuple[int, bytes]:
    """``(status, body)`` of one lookupd query; raises :class:`LookupdError` when no answer came.

    A query that is cancelled (its tool or Reader closing) closes its socket at once.
    """
    try:
        return await http_get(url, headers, connect_timeout, request_timeout)
    except HTTPGetError as exc:  # DNS, refused, timeout: one failure kind for the caller
        cause = exc.__cause__  # an OSError's short text, not its class name
        raise LookupdError(error_text(cause, "nsqlookupd") if cause else str(exc)) from exc


def _producer_address(producer: Any) -> tuple[str, int]:
    if not isinstance(producer, dict):
        raise LookupdError(f"producer entry is not an object: {producer!r:.100}")
    host = producer.get("broadcast_address") or producer.get("address") or producer.get("hostname")
    port = producer.get("tcp_port")
    if not isinstance(host, str) or not host:
        raise LookupdError(f"producer entry has no broadcast_address: {producer!r:.200}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise LookupdError(f"producer entry has no valid tcp_port: {producer!r:.200}")
    return host, port


def parse_producers(body: bytes | str, status: int = 200) -> list[tuple[str, int]]:
    """``(broadcast_address, tcp_port)`` of each producer in a /lookup response body.

    A 404 ``TOPIC_NOT_FOUND`` (v1) or ``status_code`` 500 ``TOPIC_NOT_FOUND`` (pre-1.0) means
    "no producers" and returns ``[]``. Anything else malformed raises :class:`LookupdError`.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # Recursion: "[[[[..." too deep
        raise LookupdError(f"HTTP {status} response is not JSON: {body[:100]!r}") from None
    if not isinstance(data, dict):
        raise LookupdError(f"HTTP {status} response is not a JSON object: {str(data)[:100]}")
    if "status_code" in data and "producers" not in data:  # pre-1.0 wrapped response
        status = data.get("status_code", status)
        message = data.get("status_txt", "")
        data = data.get("data")
    else:
        message = data.get("message", "")
    if message == "TOPIC_NOT_FOUND":
        return []
    if status != 200:
        raise LookupdError(f"HTTP {status} {message}".strip())
    producers = data.get("producers") if isinstance(data, dict) else None
    if not isinstance(producers, list):
        raise LookupdError(f"response has no producers list: {str(data)[:100]}")
    result: list[tuple[str, int]] = []
    for producer in producers:
        address = _producer_address(producer)
        if address not in result:
            result.append(address)
    return result


@dataclass
class LookupResult:
    """The union of producers from one poll of every lookupd."""

    producers: list[tuple[str, int]] = field(default_factory=list)
    answered: int = 0
    failed: int = 0

    @property
    def complete(self) -> bool:
        """Every lookupd answered: an nsqd missing from ``producers`` is really gone."""
        return self.failed == 0 and self.answered > 0


class LookupdPoller:
    """Queries every lookupd in ``addresses`` for ``topic`` (see the module docstring)."""

    def __init__(
        self,
        addresses: Sequence[str],
        topic: str,
        connect_timeout: float = 1.0,
        request_timeout: float = 2.0,
        name: str = "",
        auth_secret: str | bytes | None = None,
    ) -> None:
        self.addresses = list(addresses)
        self.urls = [lookup_url(address, topic) for address in self.addresses]
        self.topic = topic
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.name = name or topic
        self._headers = {"Accept": ACCEPT_HEADER}
        if auth_secret:  # go-nsq sends the AUTH secret to lookupd as a bearer token
            secret = auth_secret.decode() if isinstance(auth_secret, bytes) else auth_secret
            self._headers["Authorization"] = f"Bearer {secret}"
        self._failing: dict[str, str] = {}  # url -> error last logged

    async def query_one(self, url: str) -> list[tuple[str, int]]:
        """The producers one lookupd lists; raises :class:`LookupdError` on any failure."""
        status, body = await lookupd_get(url, self._headers, self.connect_timeout,
                                         self.request_timeout)
        return parse_producers(body, status)

    async def query_all(
        self, on_answer: Callable[[list[tuple[str, int]]], None] | None = None
    ) -> LookupResult:
        """Query every lookupd concurrently; the union of what answered (order kept).

        ``on_answer(producers)`` is called as each lookupd answers, so that a lookupd that
        hangs until ``request_timeout`` does not hold up the nsqds the others list.
        """
        async def query(url: str) -> list[tuple[str, int]]:
            producers = await self.query_one(url)
            if on_answer is not None:
                try:
                    on_answer(producers)
                except Exception:  # the caller's bug is not this lookupd's failure
                    logger.exception("[%s] handling the answer of %s failed", self.name, url)
            return producers

        outcomes = await asyncio.gather(*(query(url) for url in self.urls), return_exceptions=True)
        result = LookupResult()
        for url, outcome in zip(self.urls, outcomes):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome  # cancellation and friends are not lookupd failures
                result.failed += 1
                self._report_failure(url, outcome)
                continue
            result.answered += 1
            self._report_success(url)
            for address in outcome:
                if address not in result.producers:
                    result.producers.append(address)
        return result

    def _report_failure(self, url: str, error: Exception) -> None:
        text = str(error)
        if self._failing.get(url) is None:
            logger.warning("[%s] lookupd %s query failed: %s", self.name, url, text)
        else:
            logger.debug("[%s] lookupd %s still failing: %s", self.name, url, text)
        self._failing[url] = text

    def _report_success(self, url: str) -> None:
        if self._failing.pop(url, None) is not None:
            logger.info("[%s] lookupd %s is answering again", self.name, url)

    def failing(self) -> dict[str, str]:
        """lookupd URL -> last error, for the ones currently failing."""
        return dict(self._failing)


def normalise_lookupd_addresses(addresses: str | Iterable[str] | None) -> list[str]:
    """A single address or a sequence -> a list of non-empty strings (TypeError/ValueError)."""
    if addresses is None:
        return []
    if isinstance(addresses, str):
        addresses = [addresses]
    if isinstance(addresses, (bytes, dict)) or not hasattr(addresses, "__iter__"):
        raise TypeError(
            f"lookupd_http_addresses must be an address or a list of addresses, not {type(addresses).__name__}"
        )
    result = []
    for address in addresses:
        if not isinstance(address, str) or not address.strip():
            raise ValueError(f"invalid lookupd HTTP address {address!r}")
        if address not in result:
            result.append(address)
    return result
