"""lookupd queries against a tiny tornado HTTP server serving canned responses."""

import asyncio
import json
import logging
import socket

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from nsqcli.broker.daemons import free_port
from nsqcli.lib.lookupd import (
    ACCEPT_HEADER,
    LookupdError,
    LookupdPoller,
    lookup_url,
    normalise_lookupd_addresses,
    parse_producers,
)

V1 = {"channels": ["c"], "producers": [
    {"remote_address": "10.0.0.1:5555", "hostname": "h1", "broadcast_address": "nsqd-1",
     "tcp_port": 4150, "http_port": 4151, "version": "1.3.0"},
    {"remote_address": "10.0.0.2:5555", "hostname": "h2", "broadcast_address": "nsqd-2",
     "tcp_port": 4152, "http_port": 4153, "version": "1.3.0"},
]}
PRE_1_0 = {"status_code": 200, "status_txt": "OK", "data": {"channels": [], "producers": [
    {"address": "old-nsqd", "tcp_port": 4150, "http_port": 4151},
]}}


# ---- pure parts -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "endpoint, expected",
    [
        ("127.0.0.1:4161", "http://127.0.0.1:4161/lookup?topic=t"),
        ("http://127.0.0.1:4161", "http://127.0.0.1:4161/lookup?topic=t"),
        ("http://127.0.0.1:4161/", "http://127.0.0.1:4161/lookup?topic=t"),
        ("https://lookupd.example/nsq/lookup", "https://lookupd.example/nsq/lookup?topic=t"),
        ("lookupd:4161/lookup?foo=bar", "http://lookupd:4161/lookup?foo=bar&topic=t"),
        ("lookupd:4161/?topic=old&x=1", "http://lookupd:4161/lookup?x=1&topic=t"),
    ],
)
def test_lookup_url(endpoint, expected):
    assert lookup_url(endpoint, "t") == expected


def test_lookup_url_rejects_garbage():
    for bad in ("", "   ", "http://", None):
        with pytest.raises(ValueError):
            lookup_url(bad, "t")


def test_parse_v1_and_pre_1_0():
    assert parse_producers(json.dumps(V1).encode()) == [("nsqd-1", 4150), ("nsqd-2", 4152)]
    assert parse_producers(json.dumps(PRE_1_0)) == [("old-nsqd", 4150)]


def test_parse_topic_not_found_means_no_producers():
    assert parse_producers(b'{"message":"TOPIC_NOT_FOUND"}', 404) == []
    assert parse_producers(b'{"status_code":500,"status_txt":"TOPIC_NOT_FOUND","data":null}') == []


@pytest.mark.parametrize(
    "body, status, match",
    [
        (b"<html>oops</html>", 200, "not JSON"),
        (b"[1, 2]", 200, "not a JSON object"),
        (b'{"message":"INTERNAL_ERROR"}', 500, "HTTP 500 INTERNAL_ERROR"),
        (b'{"status_code":500,"status_txt":"INVALID","data":null}', 200, "HTTP 500 INVALID"),
        (b'{"channels":[]}', 200, "no producers list"),
        (b'{"producers":[{"tcp_port":4150}]}', 200, "no broadcast_address"),
        (b'{"producers":[{"broadcast_address":"x","tcp_port":"4150"}]}', 200, "tcp_port"),
        (b'{"producers":["x:1"]}', 200, "not an object"),
        (b"\xff\xfe", 200, "not JSON"),
    ],
)
def test_parse_garbage(body, status, match):
    with pytest.raises(LookupdError, match=match):
        parse_producers(body, status)


def test_normalise_lookupd_addresses():
    assert normalise_lookupd_addresses(None) == []
    assert normalise_lookupd_addresses("a:1") == ["a:1"]
    assert normalise_lookupd_addresses(("a:1", "b:2", "a:1")) == ["a:1", "b:2"]
    with pytest.raises(TypeError):
        normalise_lookupd_addresses(4161)
    with pytest.raises(ValueError):
        normalise_lookupd_addresses(["a:1", ""])


# ---- against HTTP servers ---------------------------------------------------------------------

class Canned(RequestHandler):
    def initialize(self, state):
        self.state = state

    def get(self, path):
        self.state["requests"].append((self.request.path, self.get_query_argument("topic", None),
                                       self.request.headers.get("Accept"),
                                       self.request.headers.get("Authorization")))
        status, body = self.state["reply"]
        self.set_status(status)
        self.write(body if isinstance(body, bytes) else json.dumps(body).encode())


class Lookupd:
    def __init__(self, reply):
        self.state = {"reply": reply, "requests": []}
        app = Application([(r"/(.*)", Canned, {"state": self.state})])
        sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self.port = sockets[0].getsockname()[1]
        self.server = HTTPServer(app)
        self.server.add_sockets(sockets)

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def set(self, status, body):
        self.state["reply"] = (status, body)


def test_poller_unions_every_lookupd_and_sends_accept_header():
    async def main():
        one = Lookupd((200, V1))
        two = Lookupd((200, PRE_1_0))
        three = Lookupd((200, {"producers": [V1["producers"][1],
                                             {"broadcast_address": "nsqd-3", "tcp_port": 1}]}))
        poller = LookupdPoller([one.address, two.address, three.address], "t", auth_secret="s3cret")
        result = await poller.query_all()
        assert result.producers == [("nsqd-1", 4150), ("nsqd-2", 4152), ("old-nsqd", 4150), ("nsqd-3", 1)]
        assert result.complete and result.answered == 3
        for server in (one, two, three):
            assert server.state["requests"] == [("/lookup", "t", ACCEPT_HEADER, "Bearer s3cret")]
            server.server.stop()

    asyncio.run(main())


def test_poller_failures_are_partial_and_logged_once_per_state_change(caplog):
    async def main():
        good = Lookupd((200, V1))
        flaky = Lookupd((500, {"message": "INTERNAL_ERROR"}))
        dead = f"127.0.0.1:{free_port()}"
        poller = LookupdPoller([good.address, flaky.address, dead], "t", name="t:c",
                               connect_timeout=0.5, request_timeout=1)
        with caplog.at_level(logging.DEBUG, logger="nsqcli.lib.lookupd"):
            first = await poller.query_all()
            second = await poller.query_all()
        assert first.producers == second.producers == [("nsqd-1", 4150), ("nsqd-2", 4152)]
        assert first.failed == 2 and not first.complete
        ours = lambda: [r for r in caplog.records if r.name == "nsqcli.lib.lookupd"]  # noqa: E731
        warnings = [r for r in ours() if r.levelno == logging.WARNING]
        assert len(warnings) == 2  # one per failing lookupd, not one per poll
        assert any("INTERNAL_ERROR" in r.getMessage() for r in warnings)
        assert set(poller.failing()) == {lookup_url(flaky.address, "t"), lookup_url(dead, "t")}
        caplog.clear()
        flaky.set(200, {"producers": []})
        with caplog.at_level(logging.INFO, logger="nsqcli.lib.lookupd"):
            third = await poller.query_all()
        assert third.failed == 1
        assert [r.getMessage() for r in ours() if r.levelno == logging.INFO] == [
            f"[t:c] lookupd {lookup_url(flaky.address, 't')} is answering again"]
        # garbage is a failure too
        good.set(200, b"not json")
        fourth = await poller.query_all()
        assert fourth.answered == 1 and fourth.producers == []
        for server in (good, flaky):
            server.server.stop()

    asyncio.run(main())


def test_poller_topic_not_found_is_an_empty_answer():
    async def main():
        server = Lookupd((404, {"message": "TOPIC_NOT_FOUND"}))
        result = await LookupdPoller([server.address], "t").query_all()
        assert result.producers == [] and result.complete
        server.server.stop()

    asyncio.run(main())


def test_a_cancelled_query_closes_its_socket_at_once():
    # Reader.close() cancels a lookupd query in flight: its connection must end then, not when
    # the lookupd answers or the garbage collector finds the socket (a ResourceWarning)
    from nsqcli.lib.lookupd import LookupdPoller

    async def main() -> bool:
        accepted, ended = asyncio.Event(), asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set()
            await reader.read()  # b"" once the client's socket is closed
            ended.set()
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        poller = LookupdPoller([f"127.0.0.1:{port}"], "t", request_timeout=60)
        query = asyncio.ensure_future(poller.query_one(poller.urls[0]))
        await asyncio.wait_for(accepted.wait(), 5)
        query.cancel()
        try:
            await asyncio.wait_for(ended.wait(), 2)
        finally:
            server.close()
            await server.wait_closed()
        return query.cancelled()

    assert asyncio.run(main())


def test_http_answers_are_read_whole_or_refused():
    from nsqcli.lib.http_get import HTTPGetError, parse_answer

    assert parse_answer(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}") == (200, b"{}")
    assert parse_answer(b"HTTP/1.1 404 Not Found\r\n\r\n{\"message\":\"TOPIC_NOT_FOUND\"}")[0] == 404
    for answer, text in ((b"", "closed without an answer"), (b"<html>hi</html>", "not HTTP"),
                         (b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n{}", "cut short")):
        with pytest.raises(HTTPGetError, match=text):
            parse_answer(answer)
