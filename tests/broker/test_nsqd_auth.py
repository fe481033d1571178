"""AUTH against an auth HTTP server with nsqd's contract (internal/auth)."""

from __future__ import annotations

import json
import time

import pytest
from auth_server import AuthServer

from nsqcli.lib.protocol import commands as cmd

from test_nsqd_wire import RawNSQ, fatal

PUBLISH_ALL = {"topic": ".*", "channels": [".*"], "permissions": ["publish"]}
SUBSCRIBE_ORDERS = {"topic": "^orders$", "channels": ["^worker"], "permissions": ["subscribe"]}


@pytest.fixture
def auth_server():
    server = AuthServer(reply={"ttl": 3600, "identity": "alice", "identity_url": "http://id/alice",
                               "authorizations": [PUBLISH_ALL, SUBSCRIBE_ORDERS]})
    yield server
    server.close()


@pytest.fixture
def auth_nsqd(nsqd_factory, auth_server):
    return nsqd_factory(auth_http_addresses=[auth_server.address])


def authed(nsqd, secret: bytes = b"s3cret") -> RawNSQ:
    conn = RawNSQ(nsqd)
    conn.identify(heartbeat_interval=1000)
    conn.send(cmd.auth(secret))
    return conn


def test_identify_says_auth_required(auth_nsqd):
    assert RawNSQ(auth_nsqd).identify(feature_negotiation=True)["auth_required"] is True


@pytest.mark.parametrize("command, name", [
    (cmd.pub("t", b"x"), "PUB"), (cmd.mpub("t", [b"x"]), "MPUB"),
    (cmd.dpub("t", 10, b"x"), "DPUB"), (cmd.subscribe("t", "c"), "SUB"),
])
def test_commands_need_auth_first(auth_nsqd, command, name):
    conn = RawNSQ(auth_nsqd)
    conn.identify(heartbeat_interval=1000)
    conn.send(command)
    fatal(conn, f"E_AUTH_FIRST AUTH required before {name}".encode())


def test_auth_success_and_contract(auth_nsqd, auth_server):
    conn = authed(auth_nsqd)
    reply = json.loads(conn.response())
    assert reply == {"identity": "alice", "identity_url": "http://id/alice", "permission_count": 2}
    query = auth_server.queries[-1]
    assert query["path"] == "/auth"
    assert query["accept_header"] == "application/vnd.nsq; version=1.0"
    assert query["secret"] == "s3cret" and query["tls"] == "false"
    assert query["remote_ip"] == "127.0.0.1" and query["common_name"] == ""
    conn.pub("anything", b"x")
    conn.sub("orders", "worker-1", rdy=1)
    client = auth_nsqd.channel_stats("orders", "worker-1")["clients"][0]
    assert client["authed"] is True and client["auth_identity"] == "alice"


def test_unauthorized_publish_and_subscribe(auth_nsqd, auth_server):
    auth_server.reply["authorizations"] = [SUBSCRIBE_ORDERS]
    conn = authed(auth_nsqd)
    conn.response()
    conn.send(cmd.pub("orders", b"x"))
    fatal(conn, b'E_UNAUTHORIZED AUTH failed for PUB on "orders" ""')
    conn = authed(auth_nsqd)
    conn.response()
    conn.send(cmd.subscribe("orders", "audit"))
    fatal(conn, b'E_UNAUTHORIZED AUTH failed for SUB on "orders" "audit"')


def test_auth_server_refusal(auth_nsqd, auth_server):
    auth_server.status = 403
    fatal(authed(auth_nsqd), b"E_AUTH_FAILED AUTH failed")


def test_an_address_with_a_scheme_is_the_endpoint_itself(nsqd_factory, auth_server):
    nsqd = nsqd_factory(auth_http_addresses=[f"http://{auth_server.address}/v2/check"])
    json.loads(authed(nsqd).response())
    assert auth_server.queries[-1]["path"] == "/v2/check"  # no /auth appended


@pytest.mark.parametrize("change", [
    {"ttl": 0}, {"ttl": -5},
    {"authorizations": [{"topic": ".*", "channels": [".*"], "permissions": ["admin"]}]},
], ids=["ttl-0", "ttl-negative", "unknown-permission"])
def test_unusable_auth_answers_fail(auth_nsqd, auth_server, change):
    auth_server.reply.update(change)
    fatal(authed(auth_nsqd), b"E_AUTH_FAILED AUTH failed")


def test_no_authorizations(auth_nsqd, auth_server):
    auth_server.reply["authorizations"] = []
    fatal(authed(auth_nsqd), b"E_UNAUTHORIZED AUTH no authorizations found")


def test_auth_twice(auth_nsqd):
    conn = authed(auth_nsqd)
    conn.response()
    conn.send(cmd.auth(b"again"))
    fatal(conn, b"E_INVALID AUTH already set")


def test_expired_authorization_is_asked_again(auth_nsqd, auth_server):
    auth_server.reply["ttl"] = 1
    conn = authed(auth_nsqd)
    conn.response()
    asked = len(auth_server.queries)
    time.sleep(1.2)
    auth_server.reply["authorizations"] = [SUBSCRIBE_ORDERS]
    conn.send(cmd.pub("t", b"x"))  # the fresh answer no longer allows publishing
    fatal(conn, b'E_UNAUTHORIZED AUTH failed for PUB on "t" ""')
    assert len(auth_server.queries) == asked + 1
