"""A topic's creation and the channels lookupd knows for it (nsqd's GetTopic).

The call that creates a topic asks every lookupd for the topic's channels in a blocking call and
creates them before it returns, so the HTTP request or TCP command (PUB, DPUB, MPUB, SUB) that
created it answers only once they exist. A concurrent caller finds the topic in nsqd's map and
goes on at once; its messages wait in the topic, which starts once the channels exist.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from nsqcli.lib.protocol import commands as cmd

from test_nsqd_delivery import wait_for
from test_nsqd_lookupd import FakeLookupd
from test_nsqd_wire import RawNSQ, consumer

#: nsqd gives up on a lookupd HTTP query after 5 s (--http-client-request-timeout; ours too)
LOOKUPD_QUERY_TIMEOUT = 5.0


def test_topic_create_answers_once_the_channels_lookupd_knows_exist(nsqd_factory, nsqlookupd):
    """/topic/create answers only once they exist (the embedded nsqd answered first and created
    them a moment later: a channel made elsewhere meanwhile appeared too)."""
    first, second = (nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
                     for _ in range(2))
    first.create_topic("shared")
    first.create_channel("shared", "known")
    assert wait_for(lambda: "known" in nsqlookupd.channels("shared"))
    second.create_topic("warmup")  # registered: second has read lookupd's HTTP port by now
    nsqlookupd.wait_for_producer(second, topic="warmup")
    second.create_topic("shared")
    assert second.channel_stats("shared", "known") is not None


def _fresh_nsqd_lookupd_knows(nsqd_factory, nsqlookupd, topic: str, channel: str):
    """An nsqd without ``topic``, registered with a lookupd that knows ``channel`` of it (made
    on lookupd's HTTP API, as nsqadmin does)."""
    nsqlookupd.http_json("POST", "/channel/create", {"topic": topic, "channel": channel})
    nsqd = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    nsqd.create_topic("warmup")  # registered: nsqd has read lookupd's HTTP port by now
    nsqlookupd.wait_for_producer(nsqd, topic="warmup")
    return nsqd


@pytest.mark.parametrize("command, messages", [
    (cmd.pub("pubbed", b"one"), 1),
    (cmd.dpub("pubbed", 60_000, b"later"), 1),
    (cmd.mpub("pubbed", [b"one", b"two"]), 2),
], ids=["PUB", "DPUB", "MPUB"])
def test_tcp_publish_that_creates_a_topic_answers_once_the_channels_lookupd_knows_exist(
        nsqd_factory, nsqlookupd, command, messages):
    """The embedded nsqd answered OK at once and created the channels a moment later."""
    nsqd = _fresh_nsqd_lookupd_knows(nsqd_factory, nsqlookupd, "pubbed", "known")
    conn = RawNSQ(nsqd)
    conn.send(command)
    conn.ok()
    assert nsqd.channel_stats("pubbed", "known") is not None
    # the topic hands its messages on by itself a moment later (nsqd's topic messagePump)
    assert wait_for(lambda: nsqd.channel_stats("pubbed", "known")["message_count"] == messages)


def test_tcp_sub_that_creates_a_topic_answers_once_the_channels_lookupd_knows_exist(
        nsqd_factory, nsqlookupd):
    """Once SUB's OK comes, lookupd's channel exists beside the subscribed one, and a message
    published then reaches both."""
    nsqd = _fresh_nsqd_lookupd_knows(nsqd_factory, nsqlookupd, "subbed", "known")
    sub = consumer(nsqd, "subbed", "mine")
    assert nsqd.channel_stats("subbed", "known") is not None
    nsqd.pub("subbed", b"after")
    assert sub.message().body == b"after"
    assert wait_for(lambda: nsqd.channel_stats("subbed", "known")["depth"] == 1)


class HeldChannels:
    """A lookupd HTTP /channels endpoint whose answer for one topic waits until released."""

    def __init__(self, topic: str, channels: list[str]) -> None:
        self.topic = topic
        self.channels = channels
        self.asked = threading.Event()  # nsqd asked for the held topic's channels
        self.release = threading.Event()
        held = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlparse(self.path)
                topic = (parse_qs(url.query).get("topic") or [""])[0]
                known: list[str] = []
                if url.path == "/channels" and topic == held.topic:
                    held.asked.set()
                    held.release.wait(30)
                    known = held.channels
                body = json.dumps({"channels": known}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def held_lookupd():
    """A fake lookupd (TCP and HTTP) that knows channel "known" of topic "held" and holds that
    answer until the test releases it."""
    http = HeldChannels("held", ["known"])
    tcp = FakeLookupd(http_port=http.port)
    yield tcp, http
    http.close()
    tcp.close()


def test_only_the_caller_that_creates_a_topic_waits_for_lookupd(nsqd_factory, held_lookupd):
    """nsqd's creator blocks on lookupd's answer; a concurrent caller takes the topic from the
    map at once (the embedded nsqd made every HTTP request that found the topic not yet started
    wait too). All their messages reach the channels lookupd knew."""
    tcp, http = held_lookupd
    nsqd = nsqd_factory(lookupd_tcp_addresses=[tcp.address])
    nsqd.create_topic("warmup")  # registered: nsqd has read the fake's HTTP port by now
    wait_for(lambda: "REGISTER warmup" in tcp.session(0))
    creator = RawNSQ(nsqd)
    creator.send(cmd.pub("held", b"creator"))
    assert http.asked.wait(10)
    # well within nsqd's own query timeout, so the query is still held while they answer
    status, _ = nsqd.http("POST", "/pub", {"topic": "held"}, b"over http",
                          timeout=LOOKUPD_QUERY_TIMEOUT / 2)
    assert status == 200
    RawNSQ(nsqd).pub("held", b"over tcp")
    creator.nothing_for(0.1)  # its OK waits for lookupd's answer
    http.release.set()
    creator.ok()
    assert nsqd.channel_stats("held", "known") is not None
    assert wait_for(lambda: nsqd.channel_stats("held", "known")["message_count"] == 3)
