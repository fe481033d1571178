"""The HTTP client of the tools that use nsqd's and nsqlookupd's HTTP API (nsqcli/cli/nsq_http.py):
URLs, answers, and what no answer looks like."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from nsqcli.cli.nsq_http import (
    HttpSession, Reply, RequestFailed, Timeouts, _failure_text, parse_names, stats_topics, url,
    v1_data,
)
from nsqcli.lib.lookupd import LookupdError


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1:4151", "http://127.0.0.1:4151/topic/pause?topic=a%23ephemeral"),
    ("[::1]:4151", "http://[::1]:4151/topic/pause?topic=a%23ephemeral"),
    ("http://h:4161/", "http://h:4161/topic/pause?topic=a%23ephemeral"),
    ("http://h:4161/lookup", "http://h:4161/topic/pause?topic=a%23ephemeral"),  # pynsq-style
    ("https://proxy/nsq/", "https://proxy/nsq/topic/pause?topic=a%23ephemeral"),
])
def test_urls(address, expected):
    assert url(address, "/topic/pause", [("topic", "a#ephemeral")]) == expected
    assert url("h:1", "/stats") == "http://h:1/stats"


def test_reply_messages_are_nsqds_texts():
    assert Reply(404, b'{"message":"TOPIC_NOT_FOUND"}').message() == "TOPIC_NOT_FOUND"
    wrapped = b'{"status_code":500,"status_txt":"INTERNAL_ERROR","data":null}'
    assert Reply(500, wrapped).message() == "INTERNAL_ERROR"
    assert Reply(502, b"<html>Bad Gateway</html>\n").describe() == "HTTP 502 <html>Bad Gateway</html>"
    assert Reply(500, b"").describe() == "HTTP 500"


def test_v1_and_wrapped_answers():
    assert v1_data(Reply(200, b'{"topics":["a"]}')) == {"topics": ["a"]}
    wrapped = b'{"status_code":200,"status_txt":"OK","data":{"topics":["a"]}}'
    assert v1_data(Reply(200, wrapped)) == {"topics": ["a"]}
    assert parse_names(wrapped, "topics") == ["a"]
    with pytest.raises(LookupdError, match="HTTP 404 TOPIC_NOT_FOUND"):
        v1_data(Reply(404, b'{"message":"TOPIC_NOT_FOUND"}'))
    with pytest.raises(LookupdError, match="not JSON"):
        v1_data(Reply(200, b"OK"))
    with pytest.raises(LookupdError, match="no channel list"):
        parse_names(b'{"channels":[1]}', "channels")


def test_stats_topics_and_their_channels():
    body = {"topics": [{"topic_name": "a", "channels": [{"channel_name": "x"}]},
                       {"topic_name": "b", "channels": None}]}
    assert stats_topics(Reply(200, json.dumps(body).encode())) == {"a": ["x"], "b": []}
    # nsqd's answer to ?topic= naming a topic it does not have
    assert stats_topics(Reply(200, b'{"version":"1.3.0","topics":null,"producers":null}')) == {}
    with pytest.raises(LookupdError, match="no topic list"):
        stats_topics(Reply(200, b'{"version":"1.3.0"}'))


@pytest.mark.parametrize("parse", [lambda b: parse_names(b, "topics"),
                                   lambda b: stats_topics(Reply(200, b))])
def test_too_deep_json_is_a_clear_error(parse):
    with pytest.raises(LookupdError):
        parse(b"[" * 200_000)


def _request(address, timeouts=Timeouts(1.0, 1.0)):
    async def run():
        session = HttpSession(timeouts)
        try:
            return await session.post(address, "/topic/pause", [("topic", "t")])
        finally:
            session.close()

    return asyncio.run(run())


def test_no_answer_is_request_failed_with_a_short_text():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(RequestFailed, match=r"^connection refused \(is nsqd running there\?\)$"):
            _request(f"127.0.0.1:{port}")


def test_a_failure_text_from_a_cause_names_nsqlookupd():
    """A tornado error with no text of its own, caused by the refusal: the text comes from the
    cause and still names the daemon asked (it said "is nsqd running there?" of a lookupd)."""
    try:
        try:
            raise ConnectionRefusedError()
        except ConnectionRefusedError as refused:
            raise OSError() from refused
    except OSError as wrapped:
        assert _failure_text(wrapped, "nsqlookupd") == (
            "connection refused (is nsqlookupd running there?)")


def test_a_silent_server_times_out_within_the_request_timeout():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        address = "127.0.0.1:%d" % silent.getsockname()[1]
        with pytest.raises(RequestFailed, match="^timed out during request"):
            _request(address, Timeouts(1.0, 0.3))


def test_answers_come_back_with_their_status(nsqd):
    reply = _request(nsqd.http_address)
    assert (reply.status, reply.message()) == (404, "TOPIC_NOT_FOUND")
