"""nsqlookupd HTTP API conformance: routes, status codes, error texts, JSON shapes, headers.

Runs against the embedded nsqlookupd, or the real one when NSQCLI_TEST_NSQLOOKUPD is set.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from nsqcli.broker.daemons import direct_opener


def message(reply: tuple[int, bytes]) -> tuple[int, str]:
    status, body = reply
    return status, json.loads(body)["message"]


def test_ping(nsqlookupd):
    assert nsqlookupd.http("GET", "/ping") == (200, b"OK")


def test_info_reports_a_version(nsqlookupd):
    status, body = nsqlookupd.http("GET", "/info")
    info = json.loads(body)
    assert status == 200
    assert set(info) == {"version"} and info["version"].startswith("1.")


def test_empty_lookupd(nsqlookupd):
    assert nsqlookupd.http_json("GET", "/topics") == {"topics": []}
    assert nsqlookupd.http_json("GET", "/nodes") == {"producers": []}
    assert nsqlookupd.http_json("GET", "/channels", {"topic": "none"}) == {"channels": []}


@pytest.mark.parametrize("method, path, params, expected", [
    ("GET", "/lookup", None, (400, "MISSING_ARG_TOPIC")),
    ("GET", "/lookup", {"topic": "unknown"}, (404, "TOPIC_NOT_FOUND")),
    ("GET", "/channels", None, (400, "MISSING_ARG_TOPIC")),
    ("POST", "/topic/create", None, (400, "MISSING_ARG_TOPIC")),
    ("POST", "/topic/create", {"topic": "bad!name"}, (400, "INVALID_ARG_TOPIC")),
    ("POST", "/topic/create", {"topic": ""}, (400, "INVALID_ARG_TOPIC")),
    ("POST", "/topic/delete", None, (400, "MISSING_ARG_TOPIC")),
    ("POST", "/topic/tombstone", None, (400, "MISSING_ARG_TOPIC")),
    ("POST", "/topic/tombstone", {"topic": "t"}, (400, "MISSING_ARG_NODE")),
    ("POST", "/channel/create", None, (400, "MISSING_ARG_TOPIC")),
    ("POST", "/channel/create", {"topic": "bad!"}, (400, "INVALID_ARG_TOPIC")),
    ("POST", "/channel/create", {"topic": "t"}, (400, "MISSING_ARG_CHANNEL")),
    ("POST", "/channel/create", {"topic": "t", "channel": "bad!"}, (400, "INVALID_ARG_CHANNEL")),
    ("POST", "/channel/delete", {"topic": "t"}, (400, "MISSING_ARG_CHANNEL")),
    ("POST", "/channel/delete", {"topic": "t", "channel": "c"}, (404, "CHANNEL_NOT_FOUND")),
    ("GET", "/no/such/route", None, (404, "NOT_FOUND")),
    ("POST", "/lookup", {"topic": "t"}, (405, "METHOD_NOT_ALLOWED")),
    ("GET", "/topic/create", {"topic": "t"}, (405, "METHOD_NOT_ALLOWED")),
    ("PUT", "/topics", None, (405, "METHOD_NOT_ALLOWED")),
])
def test_errors(nsqlookupd, method, path, params, expected):
    assert message(nsqlookupd.http(method, path, params)) == expected


@pytest.mark.parametrize("query", ["topic=%zz", "topic=a;b", "topic=%"])
def test_malformed_query_is_an_invalid_request(nsqlookupd, query):
    status, headers, body = _raw(nsqlookupd, "GET", "/lookup?" + query)
    assert (status, json.loads(body)) == (400, {"message": "INVALID_REQUEST"})
    assert _raw(nsqlookupd, "GET", "/topics?" + query)[0] == 200  # /topics reads no parameter


def test_create_topic_then_lookup_is_empty(nsqlookupd):
    assert nsqlookupd.http("POST", "/topic/create", {"topic": "made"}) == (200, b"")
    assert nsqlookupd.http("POST", "/topic/create", {"topic": "made"}) == (200, b"")  # idempotent
    assert nsqlookupd.topics() == ["made"]
    assert nsqlookupd.lookup("made") == {"channels": [], "producers": []}


def test_create_channel_creates_its_topic(nsqlookupd):
    assert nsqlookupd.http("POST", "/channel/create", {"topic": "t", "channel": "c"}) == (200, b"")
    assert nsqlookupd.topics() == ["t"]
    assert nsqlookupd.channels("t") == ["c"]
    assert nsqlookupd.lookup("t") == {"channels": ["c"], "producers": []}


def test_delete_channel(nsqlookupd):
    nsqlookupd.http("POST", "/channel/create", {"topic": "t", "channel": "c1"})
    nsqlookupd.http("POST", "/channel/create", {"topic": "t", "channel": "c2"})
    assert nsqlookupd.http("POST", "/channel/delete", {"topic": "t", "channel": "c1"}) == (200, b"")
    assert nsqlookupd.channels("t") == ["c2"]
    assert nsqlookupd.topics() == ["t"]


def test_delete_topic_removes_its_channels(nsqlookupd):
    nsqlookupd.http("POST", "/channel/create", {"topic": "t", "channel": "c"})
    nsqlookupd.http("POST", "/topic/create", {"topic": "kept"})
    assert nsqlookupd.http("POST", "/topic/delete", {"topic": "t"}) == (200, b"")
    assert nsqlookupd.topics() == ["kept"]
    assert nsqlookupd.channels("t") == []
    assert message(nsqlookupd.http("GET", "/lookup", {"topic": "t"})) == (404, "TOPIC_NOT_FOUND")
    # deleting what does not exist is not an error
    assert nsqlookupd.http("POST", "/topic/delete", {"topic": "never"}) == (200, b"")


def test_tombstone_of_unknown_topic_is_ok(nsqlookupd):
    params = {"topic": "t", "node": "127.0.0.1:4151"}
    assert nsqlookupd.http("POST", "/topic/tombstone", params) == (200, b"")


def _raw(handle, method: str, path: str):
    request = urllib.request.Request(f"http://{handle.http_address}{path}", method=method,
                                     data=b"" if method == "POST" else None,
                                     headers={"Accept": "application/vnd.nsq; version=1.0"})
    try:
        with direct_opener.open(request, timeout=5) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def test_json_answers_carry_nsq_headers(nsqlookupd):
    for path in ("/topics", "/lookup?topic=x"):
        status, headers, body = _raw(nsqlookupd, "GET", path)
        assert headers["Content-Type"] == "application/json; charset=utf-8"
        assert headers["X-NSQ-Content-Type"] == "nsq; version=1.0"
        json.loads(body)


def test_ping_is_plain_text(nsqlookupd):
    status, headers, body = _raw(nsqlookupd, "GET", "/ping")
    assert (status, body) == (200, b"OK")
    assert headers["Content-Type"].startswith("text/plain")


def test_post_success_has_an_empty_body(nsqlookupd):
    status, headers, body = _raw(nsqlookupd, "POST", "/topic/create?topic=t")
    assert (status, body) == (200, b"")
    assert headers["X-NSQ-Content-Type"] == "nsq; version=1.0"


def test_json_is_compact_like_go(nsqlookupd):
    nsqlookupd.http("POST", "/channel/create", {"topic": "t", "channel": "c"})
    assert nsqlookupd.http("GET", "/lookup", {"topic": "t"}) == (
        200, b'{"channels":["c"],"producers":[]}')
