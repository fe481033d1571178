"""nsqd's HTTP API (nsqd/http.go, internal/http_api) on tornado.

Routes, methods, parameter checks, status codes and bodies follow nsqd v1.3.0: errors are
``{"message":"<CODE>"}`` with the status, successes are ``OK``, JSON or an empty body, and every
V1 answer carries ``X-NSQ-Content-Type: nsq; version=1.0``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import ssl
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import unquote_to_bytes

import tornado.httpserver
import tornado.netutil
import tornado.web

from nsqcli.lib.protocol.names import valid_channel_name, valid_topic_name

from .options import VERSION, parse_address
from .body_commands import read_mpub
from .protocol_v2 import ClientErr
from .stats import stats_json, stats_text
from .topic import PublishFailed

if TYPE_CHECKING:
    from .server import NSQD

BOOL_PARAMS = {"true": True, "1": True, "false": False, "0": False}
_BAD_ESCAPE = re.compile(rb"%(?![0-9a-fA-F]{2})")


class HTTPError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _put(topic: Any, messages: list) -> None:
    try:
        topic.put_messages(messages)
    except PublishFailed:
        raise HTTPError(503, "EXITING") from None  # what nsqd answers when a put fails


def parse_query(raw: str) -> dict[str, list[str]]:
    """Go's url.ParseQuery: ``;`` and bad ``%`` escapes are errors; ``a`` alone means ``a=``."""
    values: dict[str, list[str]] = {}
    for part in raw.split("&"):
        if not part:
            continue
        if ";" in part:
            raise HTTPError(400, "INVALID_REQUEST")
        key, _, value = part.partition("=")
        decoded = []
        for item in (key, value):
            data = item.replace("+", " ").encode("latin-1", "replace")
            if _BAD_ESCAPE.search(data):
                raise HTTPError(400, "INVALID_REQUEST")
            decoded.append(unquote_to_bytes(data).decode("utf-8", "replace"))
        values.setdefault(decoded[0], []).append(decoded[1])
    return values


class Request:
    """What a route sees: the method, path, query values and body."""

    def __init__(self, method: str, path: str, query: str, body: bytes, headers: Any,
                 over_tls: bool = False) -> None:
        self.method = method
        self.over_tls = over_tls  # came in on the HTTPS listener
        self.path = path
        self.raw_query = query
        self.body = body
        self.headers = headers
        self.opt = ""  # the :opt of /config/:opt
        # set when this request created a topic whose channels are being asked of lookupd: nsqd
        # answers only once they exist (its GetTopic makes that query a blocking call for the
        # caller that creates the topic; any other finds it in the map and goes on)
        self.topic_created: asyncio.Future | None = None

    def params(self) -> dict[str, list[str]]:
        return parse_query(self.raw_query)

    def get(self, params: dict[str, list[str]], key: str) -> str | None:
        values = params.get(key)
        return values[0] if values else None


class API:
    def __init__(self, nsqd: "NSQD") -> None:
        self.nsqd = nsqd
        self.log_level = "info"
        self.routes: dict[str, dict[str, tuple[Callable[[Request], Any], bool]]] = {}
        self._add("GET", "/ping", self.ping, plain=True)  # nsqd's PlainText, not V1
        self._add("GET", "/info", self.info)
        self._add("POST", "/pub", self.pub)
        self._add("POST", "/mpub", self.mpub)
        self._add("GET", "/stats", self.stats)
        for action in ("create", "delete", "empty", "pause", "unpause"):
            self._add("POST", f"/topic/{action}", getattr(self, f"topic_{action}"))
            self._add("POST", f"/channel/{action}", getattr(self, f"channel_{action}"))
        self._add("GET", "/config/:opt", self.config)
        self._add("PUT", "/config/:opt", self.config)

    def _route(self, path: str) -> tuple[dict[str, tuple[Callable[[Request], Any], bool]] | None, str]:
        if path.startswith("/config/") and path.count("/") == 2 and len(path) > 8:
            return self.routes.get("/config/:opt"), path[8:]
        return self.routes.get(path), ""

    def _add(self, method: str, path: str, handler: Callable[[Request], Any],
             plain: bool = False) -> None:
        self.routes.setdefault(path, {})[method] = (handler, plain)

    # ------------------------------------------------------------ helpers

    def _topic_from_query(self, req: Request):
        params = req.params()
        name = req.get(params, "topic")
        if name is None:
            raise HTTPError(400, "MISSING_ARG_TOPIC")
        if not valid_topic_name(name):
            raise HTTPError(400, "INVALID_TOPIC")
        topic, req.topic_created = self.nsqd.open_topic(name)
        return params, topic

    def _existing_topic_and_channel(self, req: Request):
        params = req.params()
        topic_name = req.get(params, "topic")
        if topic_name is None:
            raise HTTPError(400, "MISSING_ARG_TOPIC")
        if not valid_topic_name(topic_name):
            raise HTTPError(400, "INVALID_ARG_TOPIC")
        channel_name = req.get(params, "channel")
        if channel_name is None:
            raise HTTPError(400, "MISSING_ARG_CHANNEL")
        if not valid_channel_name(channel_name):
            raise HTTPError(400, "INVALID_ARG_CHANNEL")
        topic = self.nsqd.get_existing_topic(topic_name)
        if topic is None:
            raise HTTPError(404, "TOPIC_NOT_FOUND")
        return topic, channel_name

    def _existing_channel(self, req: Request):
        topic, channel_name = self._existing_topic_and_channel(req)
        channel = topic.channels.get(channel_name)
        if channel is None:
            raise HTTPError(404, "CHANNEL_NOT_FOUND")
        return channel

    def _topic_arg(self, req: Request) -> str:
        name = req.get(req.params(), "topic")
        if name is None:
            raise HTTPError(400, "MISSING_ARG_TOPIC")
        return name

    @staticmethod
    def _content_length(req: Request) -> int:
        try:
            return int(req.headers.get("Content-Length", "-1"))
        except ValueError:
            return -1

    # ------------------------------------------------------------ endpoints

    def ping(self, req: Request) -> str:
        return "OK"

    def info(self, req: Request) -> dict:
        opts = self.nsqd.options
        return {
            "version": VERSION,
            "broadcast_address": opts.broadcast_address,
            "hostname": socket.gethostname(),
            "http_port": self.nsqd.http_port,
            "tcp_port": self.nsqd.tcp_port,
            "start_time": self.nsqd.start_time,
            # Go time.Duration values: nanoseconds
            "max_heartbeat_interval": opts.max_heartbeat_interval_ms * 1_000_000,
            "max_output_buffer_size": opts.max_output_buffer_size,
            "max_output_buffer_timeout": opts.max_output_buffer_timeout_ms * 1_000_000,
            "max_deflate_level": opts.max_deflate_level,
        }

    def pub(self, req: Request) -> str:
        opts = self.nsqd.options
        if self._content_length(req) > opts.max_msg_size or len(req.body) > opts.max_msg_size:
            raise HTTPError(413, "MSG_TOO_BIG")
        if not req.body:
            raise HTTPError(400, "MSG_EMPTY")
        params, topic = self._topic_from_query(req)
        deferred = 0
        raw = req.get(params, "defer")
        if raw is not None:
            try:
                deferred = int(raw, 10)
            except ValueError:
                raise HTTPError(400, "INVALID_DEFER") from None
            if not 0 <= deferred <= opts.max_req_timeout_ms:
                raise HTTPError(400, "INVALID_DEFER")
        _put(topic, [topic.new_message(req.body, deferred)])
        return "OK"

    def mpub(self, req: Request) -> str:
        opts = self.nsqd.options
        if self._content_length(req) > opts.max_body_size:
            raise HTTPError(413, "BODY_TOO_BIG")
        params, topic = self._topic_from_query(req)
        binary = False
        raw = req.get(params, "binary")
        if raw is not None:
            binary = BOOL_PARAMS.get(raw, True)  # nsqd treats unknown values as true
        if binary:
            try:
                bodies = read_mpub(req.body, opts.max_msg_size, opts.max_body_size)
            except ClientErr as err:
                raise HTTPError(413, err.code[2:]) from None
        else:
            if len(req.body) > opts.max_body_size:
                raise HTTPError(413, "BODY_TOO_BIG")
            bodies = []
            for block in req.body.split(b"\n"):
                if not block:
                    continue
                if len(block) > opts.max_msg_size:
                    raise HTTPError(413, "MSG_TOO_BIG")
                bodies.append(block)
        _put(topic, [topic.new_message(b) for b in bodies])
        return "OK"

    def stats(self, req: Request) -> Any:
        params = req.params()
        fmt = req.get(params, "format") or ""
        topic = req.get(params, "topic") or ""
        channel = req.get(params, "channel") or ""
        include_clients = BOOL_PARAMS.get(req.get(params, "include_clients") or "", True)
        include_mem = BOOL_PARAMS.get(req.get(params, "include_mem") or "", True)
        if fmt == "json":
            return stats_json(self.nsqd, topic, channel, include_clients, include_mem)
        return stats_text(self.nsqd, topic, channel, include_clients, include_mem).encode()

    def topic_create(self, req: Request) -> None:
        self._topic_from_query(req)

    def topic_delete(self, req: Request) -> None:
        if not self.nsqd.delete_topic(self._topic_arg(req)):
            raise HTTPError(404, "TOPIC_NOT_FOUND")

    def topic_empty(self, req: Request) -> None:
        name = self._topic_arg(req)
        if not valid_topic_name(name):
            raise HTTPError(400, "INVALID_TOPIC")
        topic = self.nsqd.get_existing_topic(name)
        if topic is None:
            raise HTTPError(404, "TOPIC_NOT_FOUND")
        topic.empty()

    def _pause_topic(self, req: Request, pause: bool) -> None:
        topic = self.nsqd.get_existing_topic(self._topic_arg(req))
        if topic is None:
            raise HTTPError(404, "TOPIC_NOT_FOUND")
        topic.pause() if pause else topic.unpause()

    def topic_pause(self, req: Request) -> None:
        self._pause_topic(req, True)

    def topic_unpause(self, req: Request) -> None:
        self._pause_topic(req, False)

    def channel_create(self, req: Request) -> None:
        topic, channel_name = self._existing_topic_and_channel(req)
        topic.get_channel(channel_name)

    def channel_delete(self, req: Request) -> None:
        topic, channel_name = self._existing_topic_and_channel(req)
        if not topic.delete_channel(channel_name):
            raise HTTPError(404, "CHANNEL_NOT_FOUND")

    def channel_empty(self, req: Request) -> None:
        self._existing_channel(req).empty()

    def channel_pause(self, req: Request) -> None:
        self._existing_channel(req).pause()

    def channel_unpause(self, req: Request) -> None:
        self._existing_channel(req).unpause()

    def config(self, req: Request) -> Any:
        """nsqd's /config/:opt: read any option by its config name; PUT changes the lookupd
        addresses (re-connecting the lookupd peers) or the log level."""
        if req.method == "PUT":
            body = req.body
            if not body or len(body) > self.nsqd.options.max_msg_size:
                raise HTTPError(413, "INVALID_VALUE")
            if req.opt == "nsqlookupd_tcp_addresses":
                try:
                    addresses = json.loads(body)
                    if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
                        raise ValueError(addresses)
                    for address in addresses:
                        parse_address(address)
                except ValueError:
                    raise HTTPError(400, "INVALID_VALUE") from None
                self.nsqd.set_lookupd_addresses(addresses)
            elif req.opt == "log_level":
                level = body.decode("utf-8", "replace").strip().lower()
                if level not in LOG_LEVELS:
                    raise HTTPError(400, "INVALID_VALUE")
                self.log_level = level
                logging.getLogger("nsqcli.broker.nsqd").setLevel(LOG_LEVELS[level])
            else:
                raise HTTPError(400, "INVALID_OPTION")
        values = config_values(self.nsqd, self.log_level)
        if req.opt not in values:
            raise HTTPError(400, "INVALID_OPTION")
        return values[req.opt]

    # ------------------------------------------------------------ dispatch

    def handle(self, req: Request) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one request."""
        v1_headers = {"X-NSQ-Content-Type": "nsq; version=1.0"}
        if self.nsqd.options.tls_required_http and not req.over_tls:
            refusal = json.dumps({"message": "TLS_REQUIRED", "https_port": self.nsqd.https_port})
            return 403, {**v1_headers, "Content-Type": "application/json; charset=utf-8"}, \
                refusal.encode()
        methods, req.opt = self._route(req.path)
        if methods is None:
            return _error(404, "NOT_FOUND")
        if req.method not in methods:
            status, headers, body = _error(405, "METHOD_NOT_ALLOWED")
            headers["Allow"] = ", ".join(sorted(methods))
            return status, headers, body
        handler, plain = methods[req.method]
        try:
            data = handler(req)
        except HTTPError as err:
            if plain:
                return err.code, {"Content-Type": "text/plain; charset=utf-8"}, err.message.encode()
            return _error(err.code, err.message)
        if plain:
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, str(data).encode()
        if data is None:
            return 200, v1_headers, b""
        if isinstance(data, str):
            return 200, {**v1_headers, "Content-Type": "text/plain; charset=utf-8"}, data.encode()
        if isinstance(data, bytes):
            return 200, {**v1_headers, "Content-Type": "text/plain; charset=utf-8"}, data
        return 200, {**v1_headers, "Content-Type": "application/json; charset=utf-8"}, \
            json.dumps(data, separators=(",", ":")).encode()


LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
              "error": logging.ERROR, "fatal": logging.CRITICAL}
_NS = 1_000_000  # Go durations are nanoseconds; the options are milliseconds


def config_values(nsqd: "NSQD", log_level: str) -> dict[str, Any]:
    """Options under nsqd's config names, valued as nsqd's /config/:opt encodes them."""
    o = nsqd.options
    return {
        "log_level": log_level,
        "broadcast_address": o.broadcast_address,
        "tcp_address": o.tcp_address,
        "http_address": o.http_address,
        "https_address": o.https_address,
        "nsqlookupd_tcp_addresses": list(o.lookupd_tcp_addresses),
        "auth_http_addresses": list(o.auth_http_addresses),
        "mem_queue_size": o.mem_queue_size,
        "data_path": o.data_path,
        "max_bytes_per_file": o.max_bytes_per_file,
        "sync_every": o.sync_every,
        "sync_timeout": o.sync_timeout_ms * _NS,
        "queue_scan_selection_count": o.queue_scan_selection_count,
        "max_msg_size": o.max_msg_size,
        "max_body_size": o.max_body_size,
        "max_rdy_count": o.max_rdy_count,
        "max_channel_consumers": o.max_channel_consumers,
        "max_output_buffer_size": o.max_output_buffer_size,
        "max_deflate_level": o.max_deflate_level,
        "snappy": o.snappy,
        "deflate": o.deflate,
        "msg_timeout": o.msg_timeout_ms * _NS,
        "max_msg_timeout": o.max_msg_timeout_ms * _NS,
        "max_req_timeout": o.max_req_timeout_ms * _NS,
        "max_heartbeat_interval": o.max_heartbeat_interval_ms * _NS,
        "output_buffer_timeout": o.output_buffer_timeout_ms * _NS,
        "max_output_buffer_timeout": o.max_output_buffer_timeout_ms * _NS,
        "min_output_buffer_timeout": o.min_output_buffer_timeout_ms * _NS,
        "tls_cert": o.tls_cert or "",
        "tls_key": o.tls_key or "",
        "tls_root_ca_file": o.tls_root_ca_file or "",
        "tls_client_auth_policy": o.tls_client_auth_policy,
        # nsqd's TLSNotRequired / TLSRequiredExceptHTTP / TLSRequired
        "tls_required": 2 if o.tls_required is True else 1 if o.tls_required else 0,
    }


def _error(code: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return code, {"X-NSQ-Content-Type": "nsq; version=1.0",
                  "Content-Type": "application/json; charset=utf-8"}, \
        json.dumps({"message": message}, separators=(",", ":")).encode()


@tornado.web.stream_request_body
class _Handler(tornado.web.RequestHandler):
    """Streams the body in so tornado never parses it as a form: nsqd reads /pub and /mpub
    bodies raw whatever the Content-Type (urllib sends x-www-form-urlencoded by default)."""

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")

    def initialize(self, api: API) -> None:
        self.api = api
        self._chunks: list[bytes] = []

    def data_received(self, chunk: bytes) -> None:
        self._chunks.append(chunk)

    async def _serve(self) -> None:
        r = self.request
        req = Request(r.method, r.path, r.query, b"".join(self._chunks), r.headers,
                      over_tls=r.protocol == "https")
        status, headers, body = self.api.handle(req)
        if req.topic_created is not None:
            await asyncio.wait([req.topic_created])
        self.clear_header("Content-Type")
        self.clear_header("Server")
        self.set_status(status)
        for key, value in headers.items():
            self.set_header(key, value)
        if r.method != "HEAD":
            self.write(body)

    get = post = put = delete = head = options = patch = lambda self, *a: self._serve()  # noqa: E731

    def check_xsrf_cookie(self) -> None:
        return None


def start_http_servers(nsqd: "NSQD") -> list[tuple[tornado.httpserver.HTTPServer, int]]:
    """nsqd's HTTP listener, then (with a TLS certificate and an ``https_address``) its HTTPS
    one: the same API, where ``tls_required=True`` refuses only plain HTTP. (server, port) each."""
    app = tornado.web.Application([(r".*", _Handler, {"api": API(nsqd)})],
                                  log_function=lambda handler: None)
    max_body = max(100 * 1024 * 1024, 2 * nsqd.options.max_body_size)
    listeners: list[tuple[str, ssl.SSLContext | None]] = [(nsqd.options.http_address, None)]
    if nsqd.ssl_context is not None and nsqd.options.https_address:
        listeners.append((nsqd.options.https_address, nsqd.ssl_context))
    started: list[tuple[tornado.httpserver.HTTPServer, int]] = []
    try:
        for address, ssl_context in listeners:
            host, port = parse_address(address)
            server = tornado.httpserver.HTTPServer(app, max_body_size=max_body, xheaders=False,
                                                   ssl_options=ssl_context)
            sockets = tornado.netutil.bind_sockets(port, host, backlog=1024)
            server.add_sockets(sockets)
            started.append((server, sockets[0].getsockname()[1]))
    except BaseException:
        for server, _ in started:
            server.stop()
        raise
    return started
