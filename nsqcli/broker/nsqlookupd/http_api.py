"""nsqlookupd's HTTP API (nsqlookupd/http.go, v1 responses) over tornado.

Every route answers like nsqlookupd v1.3.0: JSON bodies (``Content-Type: application/json;
charset=utf-8`` and ``X-NSQ-Content-Type: nsq; version=1.0``), errors as
``{"message": "<TEXT>"}`` with the status, empty bodies for successful POSTs, ``OK`` as plain
text for /ping, 404 NOT_FOUND for unknown paths and 405 METHOD_NOT_ALLOWED for a wrong method.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import tornado.web

from nsqcli.lib.protocol.names import valid_channel_name, valid_topic_name

from .options import VERSION
from .registration_db import ANY, CHANNEL, CLIENT, TOPIC, Registration, keys, subkeys

if TYPE_CHECKING:
    from .server import NSQLookupd

log = logging.getLogger("nsqcli.broker.nsqlookupd.http")


class APIError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class PlainText(str):
    """A handler result sent as text/plain rather than JSON."""


def _go_json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


_BAD_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")


class Params:
    """Query parameters the way nsqlookupd's ReqParams reads them (first value; presence counts)."""

    def __init__(self, query: str) -> None:
        self._query = query
        self._values: dict[str, list[str]] | None = None

    def _parsed(self) -> dict[str, list[str]]:
        # parsed when a handler first reads a parameter, as nsqlookupd's handlers do; Go's
        # url.ParseQuery refuses bad %-escapes and ';' separators: 400 INVALID_REQUEST
        if self._values is None:
            if ";" in self._query or _BAD_ESCAPE.search(self._query):
                raise APIError(400, "INVALID_REQUEST")
            self._values = parse_qs(self._query, keep_blank_values=True)
        return self._values

    def get(self, name: str, missing: str) -> str:
        values = self._parsed().get(name)
        if not values:
            raise APIError(400, missing)
        return values[0]

    def topic_channel(self) -> tuple[str, str]:
        """nsqlookupd's GetTopicChannelArgs: both present and valid, topic checked first."""
        topic = self.get("topic", "MISSING_ARG_TOPIC")
        if not valid_topic_name(topic):
            raise APIError(400, "INVALID_ARG_TOPIC")
        channel = self.get("channel", "MISSING_ARG_CHANNEL")
        if not valid_channel_name(channel):
            raise APIError(400, "INVALID_ARG_CHANNEL")
        return topic, channel


class LookupdAPI:
    """The route handlers; each takes the query Params and returns the response data."""

    def __init__(self, lookupd: "NSQLookupd") -> None:
        self.lookupd = lookupd
        self.db = lookupd.db
        get, post = "GET", "POST"
        self.routes: dict[str, tuple[str, Callable[[Params], Any]]] = {
            "/ping": (get, self.ping),
            "/info": (get, self.info),
            "/debug": (get, self.debug),
            "/lookup": (get, self.lookup),
            "/topics": (get, self.topics),
            "/channels": (get, self.channels),
            "/nodes": (get, self.nodes),
            "/topic/create": (post, self.create_topic),
            "/topic/delete": (post, self.delete_topic),
            "/topic/tombstone": (post, self.tombstone_topic_producer),
            "/channel/create": (post, self.create_channel),
            "/channel/delete": (post, self.delete_channel),
        }

    # -- seconds, from the options' milliseconds
    @property
    def _inactive_timeout(self) -> float:
        return self.lookupd.options.inactive_producer_timeout_ms / 1000.0

    @property
    def _tombstone_lifetime(self) -> float:
        return self.lookupd.options.tombstone_lifetime_ms / 1000.0

    def ping(self, params: Params) -> Any:
        return PlainText("OK")

    def info(self, params: Params) -> Any:
        return {"version": VERSION}

    def topics(self, params: Params) -> Any:
        return {"topics": keys(self.db.find_registrations(TOPIC, ANY, ""))}

    def channels(self, params: Params) -> Any:
        topic = params.get("topic", "MISSING_ARG_TOPIC")
        return {"channels": subkeys(self.db.find_registrations(CHANNEL, topic, ANY))}

    def lookup(self, params: Params) -> Any:
        topic = params.get("topic", "MISSING_ARG_TOPIC")
        if not self.db.find_registrations(TOPIC, topic, ""):
            raise APIError(404, "TOPIC_NOT_FOUND")
        channels = subkeys(self.db.find_registrations(CHANNEL, topic, ANY))
        producers = self.db.active(self.db.find_producers(TOPIC, topic, ""),
                                   self._inactive_timeout, self._tombstone_lifetime)
        return {"channels": channels, "producers": [p.peer.to_json() for p in producers]}

    def nodes(self, params: Params) -> Any:
        # tombstoned nodes are listed (with their tombstones); inactive ones are not
        peers = self.db.active(self.db.find_producers(CLIENT, "", ""), self._inactive_timeout, 0)
        now = self.db.clock()
        nodes = []
        for client in peers:
            peer = client.peer
            topics = keys(r for r in self.db.lookup_registrations(peer.id) if r.category == TOPIC)
            tombstones = []
            for topic in topics:
                mine = [p for p in self.db.find_producers(TOPIC, topic, "") if p.peer is peer]
                tombstones.append(any(p.is_tombstoned(self._tombstone_lifetime, now)
                                      for p in mine))
            node = peer.to_json()
            node["tombstones"] = tombstones
            node["topics"] = topics
            nodes.append(node)
        return {"producers": nodes}

    def create_topic(self, params: Params) -> Any:
        topic = params.get("topic", "MISSING_ARG_TOPIC")
        if not valid_topic_name(topic):
            raise APIError(400, "INVALID_ARG_TOPIC")
        self.db.add_registration(Registration(TOPIC, topic))
        return None

    def delete_topic(self, params: Params) -> Any:
        topic = params.get("topic", "MISSING_ARG_TOPIC")
        for registration in self.db.find_registrations(CHANNEL, topic, ANY):
            self.db.remove_registration(registration)
        for registration in self.db.find_registrations(TOPIC, topic, ""):
            self.db.remove_registration(registration)
        return None

    def tombstone_topic_producer(self, params: Params) -> Any:
        topic = params.get("topic", "MISSING_ARG_TOPIC")
        node = params.get("node", "MISSING_ARG_NODE")
        now = self.db.clock()
        for producer in self.db.find_producers(TOPIC, topic, ""):
            if f"{producer.peer.broadcast_address}:{producer.peer.http_port}" == node:
                producer.tombstone(now)
        return None

    def create_channel(self, params: Params) -> Any:
        topic, channel = params.topic_channel()
        self.db.add_registration(Registration(CHANNEL, topic, channel))
        self.db.add_registration(Registration(TOPIC, topic))
        return None

    def delete_channel(self, params: Params) -> Any:
        topic, channel = params.topic_channel()
        registrations = self.db.find_registrations(CHANNEL, topic, channel)
        if not registrations:
            raise APIError(404, "CHANNEL_NOT_FOUND")
        for registration in registrations:
            self.db.remove_registration(registration)
        return None

    def debug(self, params: Params) -> Any:
        data: dict[str, list[dict]] = {}
        for registration, producers in self.db.snapshot().items():
            key = f"{registration.category}:{registration.key}:{registration.subkey}"
            for producer in producers:
                peer = producer.peer
                entry = {"id": peer.id, "hostname": peer.hostname,
                         "broadcast_address": peer.broadcast_address, "tcp_port": peer.tcp_port,
                         "http_port": peer.http_port, "version": peer.version,
                         "last_update": int(peer.last_update * 1e9),
                         "tombstoned": producer.tombstoned_at is not None,
                         "tombstoned_at": int((producer.tombstoned_at or 0) * 1e9)}
                data.setdefault(key, []).append(entry)
        return data

    def dispatch(self, method: str, path: str, query: str) -> tuple[int, dict[str, str], bytes]:
        """One request -> (status, headers, body)."""
        route = self.routes.get(path)
        try:
            if route is None:
                raise APIError(404, "NOT_FOUND")
            if route[0] != method:
                raise APIError(405, "METHOD_NOT_ALLOWED")
            result = route[1](Params(query))
        except APIError as error:
            return error.status, _JSON_HEADERS, _go_json({"message": error.text})
        if isinstance(result, PlainText):
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, result.encode()
        if result is None:
            return 200, _V1_HEADER, b""
        return 200, _JSON_HEADERS, _go_json(result)


_V1_HEADER = {"X-NSQ-Content-Type": "nsq; version=1.0"}
_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", **_V1_HEADER}


class _Handler(tornado.web.RequestHandler):
    """Routes every request through LookupdAPI.dispatch (so 404/405 look like nsqlookupd's)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, api: LookupdAPI) -> None:
        self.api = api

    def _respond(self, *args: Any) -> None:
        request = self.request
        status, headers, body = self.api.dispatch(request.method or "GET", request.path,
                                                  request.query)
        self.set_status(status)
        self.clear_header("Content-Type")
        for name, value in headers.items():
            self.set_header(name, value)
        if body:
            self.write(body)

    get = head = post = delete = patch = put = options = _respond


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # tornado logs 4xx as warnings; for nsqlookupd they are ordinary answers
    request = handler.request
    log.debug("%d %s %s (%s) %.2fms", handler.get_status(), request.method, request.uri,
              request.remote_ip, 1000.0 * request.request_time())


def make_application(api: LookupdAPI) -> tornado.web.Application:
    return tornado.web.Application([(r"/.*", _Handler, {"api": api})], log_function=_log_request)
