"""Handles on a running nsqd / nsqlookupd: addresses, lifecycle and a synchronous HTTP helper.

A handle starts its broker either embedded (on a :class:`~nsqcli.broker.thread.BrokerThread`)
or as a real daemon subprocess (:mod:`nsqcli.broker.daemons`); tests use both the same way.
``start()`` after ``stop()`` comes back on the same ports. Used by the pytest plugin
:mod:`nsqcli.testing`, and usable without pytest.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .daemons import LOOPBACK, direct_opener, lookupd_process, nsqd_process
from .thread import BrokerThread, shared_broker_thread

#: What nsq clients send so that nsqd answers the v1 HTTP API (unwrapped JSON).
NSQ_ACCEPT = "application/vnd.nsq; version=1.0"


class BrokerHTTPError(RuntimeError):
    """A broker answered an HTTP helper call with a non-2xx status."""

    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{method} {path} -> {status} {body.decode('utf-8', 'replace')}")


# --------------------------------------------------------------------------------------------
# Backends: how a handle starts and stops its broker


class _EmbeddedBackend:
    """An embedded broker on the broker thread; a restart comes back on the same ports.

    With ``keep_state`` (nsqd) a restart reuses the broker object and so its data path (a
    temporary directory unless ``data_path`` is given): stop() writes the topics, channels and
    queued messages there and start() loads them back, as a real nsqd does with its
    ``--data-path``; close() removes a temporary data path. Without it (nsqlookupd, which keeps
    everything in memory) a restart starts from scratch.
    """

    real = False

    def __init__(self, thread: BrokerThread, build: Callable[..., Any], keep_state: bool,
                 port_names: tuple[str, ...] = ("tcp", "http")) -> None:
        self._thread = thread
        self._build = build  # build(tcp_address=..., http_address=..., ...) for port_names
        self._keep_state = keep_state
        self._ports = dict.fromkeys(port_names, 0)
        self._broker: Any = None
        self._running = False

    @property
    def broker(self) -> Any:
        return self._broker if self._running else None

    def start(self) -> dict[str, int]:
        addresses = {f"{name}_address": f"{LOOPBACK}:{port}" for name, port in self._ports.items()}
        broker = self._broker
        if broker is None or not self._keep_state:
            broker = self._build(**addresses)
        else:
            # first started on port 0: pin the ports it got
            broker.options = dataclasses.replace(broker.options, **addresses)
        self._thread.call(broker.start)
        self._broker, self._running = broker, True
        self._ports = {name: getattr(broker, f"{name}_port") for name in self._ports}
        return dict(self._ports)

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._thread.call(self._broker.stop)

    def close(self) -> None:
        self.stop()
        remove_data = getattr(self._broker, "remove_data", None)
        if remove_data is not None:
            remove_data()


class _RealBackend:
    real = True
    broker = None

    def __init__(self, process: Any) -> None:
        self.process = process

    def start(self) -> dict[str, int]:
        return dict(self.process.start())

    def stop(self) -> None:
        self.process.stop()

    def close(self) -> None:
        self.process.cleanup()


# --------------------------------------------------------------------------------------------
# Handles


class BrokerHandle:
    """Addresses, lifecycle and a synchronous HTTP helper for one broker."""

    host = LOOPBACK

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.tcp_port = 0
        self.http_port = 0
        self.https_port = 0  # nsqd with a TLS certificate: its HTTPS listener
        self.running = False
        #: time.monotonic() just before the last start: the broker's own clocks (nsqd's queue
        #: scan refresh, its lookupd pings) started no earlier
        self.started_at = 0.0

    @property
    def real(self) -> bool:
        return self._backend.real

    @property
    def broker(self) -> Any:
        """The embedded broker object (None for a real daemon or while stopped)."""
        return self._backend.broker

    @property
    def tcp_address(self) -> str:
        return f"{self.host}:{self.tcp_port}"

    @property
    def http_address(self) -> str:
        return f"{self.host}:{self.http_port}"

    def start(self) -> "BrokerHandle":
        """Start (or restart after stop()) the broker; after the first start the ports stay."""
        if not self.running:
            self.started_at = time.monotonic()
            ports = self._backend.start()
            self.tcp_port, self.http_port = ports["tcp"], ports["http"]
            self.https_port = ports.get("https", 0)
            self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.running = False
            self._backend.stop()

    def close(self) -> None:
        self.running = False
        self._backend.close()

    def http(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,  # as urlencode takes
        body: bytes | str | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, bytes]:
        """One HTTP request to the broker -> (status, body); error statuses are returned too."""
        url = f"http://{self.http_address}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = body.encode() if isinstance(body, str) else body
        if data is None and method.upper() in ("POST", "PUT"):
            data = b""
        request = urllib.request.Request(
            url, data=data, method=method.upper(), headers={"Accept": NSQ_ACCEPT}
        )
        try:
            with direct_opener.open(request, timeout=timeout) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()

    def http_json(self, method: str, path: str, params: Any = None, body: Any = None) -> Any:
        """Like http() but raises BrokerHTTPError unless 2xx; returns the decoded JSON (or None)."""
        status, data = self.http(method, path, params, body)
        if not 200 <= status < 300:
            raise BrokerHTTPError(method, path, status, data)
        if not data.strip() or data.strip() == b"OK":
            return None
        return json.loads(data)

    def ping(self) -> bool:
        try:
            return self.http("GET", "/ping", timeout=2.0)[0] == 200
        except OSError:
            return False

    def __repr__(self) -> str:
        kind = "real" if self.real else "embedded"
        return f"<{type(self).__name__} {kind} tcp={self.tcp_address} http={self.http_address}>"


class NSQDHandle(BrokerHandle):
    """An nsqd under test; the helpers use its HTTP API like the Go tools do."""

    def pub(self, topic: str, body: bytes | str, defer_ms: int | None = None) -> None:
        params: dict[str, Any] = {"topic": topic}
        if defer_ms is not None:
            params["defer"] = defer_ms
        self.http_json("POST", "/pub", params, body)

    def mpub(self, topic: str, bodies: Iterable[bytes | str]) -> None:
        """Publish several messages at once (binary /mpub, so bodies may contain newlines)."""
        from nsqcli.lib.protocol.commands import mpub_body

        self.http_json("POST", "/mpub", {"topic": topic, "binary": "true"}, mpub_body(bodies))

    def stats(self, topic: str | None = None, channel: str | None = None) -> dict:
        params = {"format": "json"}
        if topic is not None:
            params["topic"] = topic
        if channel is not None:
            params["channel"] = channel
        return self.http_json("GET", "/stats", params)

    def topic_stats(self, topic: str) -> dict | None:
        """The /stats entry of one topic, or None when nsqd does not have it."""
        for entry in self.stats(topic=topic).get("topics") or []:
            if entry["topic_name"] == topic:
                return entry
        return None

    def channel_stats(self, topic: str, channel: str) -> dict | None:
        entry = self.topic_stats(topic)
        for chan in (entry or {}).get("channels") or []:
            if chan["channel_name"] == channel:
                return chan
        return None

    def create_topic(self, topic: str) -> None:
        self.http_json("POST", "/topic/create", {"topic": topic})

    def delete_topic(self, topic: str) -> None:
        self.http_json("POST", "/topic/delete", {"topic": topic})

    def create_channel(self, topic: str, channel: str) -> None:
        self.http_json("POST", "/channel/create", {"topic": topic, "channel": channel})

    def delete_channel(self, topic: str, channel: str) -> None:
        self.http_json("POST", "/channel/delete", {"topic": topic, "channel": channel})


class LookupdHandle(BrokerHandle):
    """An nsqlookupd under test."""

    def lookup(self, topic: str) -> dict:
        return self.http_json("GET", "/lookup", {"topic": topic})

    def topics(self) -> list[str]:
        return self.http_json("GET", "/topics")["topics"]

    def channels(self, topic: str) -> list[str]:
        return self.http_json("GET", "/channels", {"topic": topic})["channels"]

    def nodes(self) -> list[dict]:
        return self.http_json("GET", "/nodes")["producers"]

    def wait_for_producer(
        self, nsqd: BrokerHandle, topic: str | None = None, timeout: float = 10.0
    ) -> dict:
        """Wait until ``nsqd`` is registered (with ``topic``, if given); returns its /nodes entry."""
        deadline = time.monotonic() + timeout
        while True:
            for node in self.nodes():
                if node.get("tcp_port") == nsqd.tcp_port and (
                    topic is None or topic in (node.get("topics") or [])
                ):
                    return node
            if time.monotonic() > deadline:
                wanted = f" with topic {topic!r}" if topic else ""
                raise TimeoutError(f"{nsqd!r} did not register{wanted} with {self!r} "
                                   f"within {timeout} s")
            time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# Building handles (usable without pytest too)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def normalize_nsqd_options(options: dict[str, Any]) -> dict[str, Any]:
    """Accept singular spellings (``auth_http_address``, ``lookupd_tcp_address``) as lists."""
    options = dict(options)
    for singular, plural in (("auth_http_address", "auth_http_addresses"),
                             ("lookupd_tcp_address", "lookupd_tcp_addresses")):
        if singular in options:
            options[plural] = _as_list(options.get(plural)) + _as_list(options.pop(singular))
    return options


def make_nsqd(options: dict[str, Any] | None = None, thread: BrokerThread | None = None,
              binary: str | None = None) -> NSQDHandle:
    """An unstarted NSQDHandle: the real ``binary`` when given, else the embedded nsqd."""
    options = normalize_nsqd_options(options or {})
    if binary:
        return NSQDHandle(_RealBackend(nsqd_process(binary, options)))

    def build(**addresses: Any) -> Any:
        from nsqcli.broker.nsqd import NSQD, NSQDOptions  # imported late: a sibling package

        return NSQD(NSQDOptions(broadcast_address=LOOPBACK, **addresses, **options))

    # like a real nsqd, one with a TLS certificate serves HTTPS too
    ports = ("tcp", "http", "https") if options.get("tls_cert") else ("tcp", "http")
    return NSQDHandle(_EmbeddedBackend(thread or shared_broker_thread(), build, keep_state=True,
                                       port_names=ports))


def make_nsqlookupd(options: dict[str, Any] | None = None, thread: BrokerThread | None = None,
                    binary: str | None = None) -> LookupdHandle:
    options = dict(options or {})
    if binary:
        return LookupdHandle(_RealBackend(lookupd_process(binary, options)))

    def build(**addresses: Any) -> Any:
        from nsqcli.broker.nsqlookupd import NSQLookupd, NSQLookupdOptions

        return NSQLookupd(NSQLookupdOptions(broadcast_address=LOOPBACK, **addresses, **options))

    return LookupdHandle(_EmbeddedBackend(thread or shared_broker_thread(), build,
                                          keep_state=False))
