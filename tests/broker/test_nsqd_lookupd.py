"""nsqd registering with nsqlookupd: the V1 transcript, what lookupd then knows, reconnection."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest

from nsqcli.broker.thread import shared_broker_thread

from test_nsqd_delivery import wait_for
from test_nsqd_wire import consumer


class FakeLookupd:
    """A scripted nsqlookupd TCP endpoint that records the commands each connection sends."""

    def __init__(self, http_port: int = 0) -> None:
        self.http_port = http_port  # told to nsqd in the IDENTIFY answer (0: none)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.sessions: list[list] = []
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            session: list = []
            self.sessions.append(session)
            threading.Thread(target=self._serve, args=(conn, session), daemon=True).start()

    def _serve(self, conn: socket.socket, session: list) -> None:
        reader = conn.makefile("rb")
        try:
            session.append(reader.read(4))
            while True:
                line = reader.readline()
                if not line:
                    return
                if line.startswith(b"IDENTIFY"):
                    (size,) = struct.unpack(">l", reader.read(4))
                    session.append(("IDENTIFY", json.loads(reader.read(size))))
                    host = "127.0.0.1" if self.http_port else ""
                    reply = json.dumps({"tcp_port": 1, "http_port": self.http_port,
                                        "version": "1.3.0", "broadcast_address": host,
                                        "hostname": "fake"}).encode()
                else:
                    session.append(line.decode().strip())
                    reply = b"OK"
                conn.sendall(struct.pack(">l", len(reply)) + reply)
        except OSError:
            return

    def session(self, index: int) -> list:
        """What the index-th connection sent so far ([] before nsqd made it)."""
        return self.sessions[index] if len(self.sessions) > index else []

    def drop_connections(self) -> None:
        for conn in self.connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self.listener.close()
        self.drop_connections()


@pytest.fixture
def fake_lookupd():
    server = FakeLookupd()
    yield server
    server.close()


def test_registration_transcript(nsqd_factory, fake_lookupd):
    nsqd = nsqd_factory(lookupd_tcp_addresses=[fake_lookupd.address])
    wait_for(lambda: len(fake_lookupd.session(0)) >= 2)
    session = fake_lookupd.session(0)
    # nsqd sends each notification from a goroutine of its own and picks REGISTER/UNREGISTER
    # when it sends it: one step at a time, or a quick delete overtakes (or replaces) a REGISTER
    for step, command in ((lambda: nsqd.create_topic("reg"), "REGISTER reg"),
                          (lambda: nsqd.create_channel("reg", "ch"), "REGISTER reg ch"),
                          (lambda: nsqd.delete_channel("reg", "ch"), "UNREGISTER reg ch"),
                          (lambda: nsqd.delete_topic("reg"), "UNREGISTER reg")):
        step()
        wait_for(lambda: command in session)
    assert session[0] == b"  V1"
    kind, identity = session[1]
    assert kind == "IDENTIFY"
    assert identity["tcp_port"] == nsqd.tcp_port and identity["http_port"] == nsqd.http_port
    assert identity["broadcast_address"] == "127.0.0.1"
    assert {"version", "hostname"} <= set(identity)
    commands = [c for c in session[2:] if c != "PING"]
    assert commands == ["REGISTER reg", "REGISTER reg ch", "UNREGISTER reg ch", "UNREGISTER reg"]


@pytest.mark.embedded_only("needs a channel created and deleted within one event-loop pass")
def test_register_or_unregister_is_decided_when_sent(nsqd_factory, fake_lookupd):
    nsqd = nsqd_factory(lookupd_tcp_addresses=[fake_lookupd.address])
    nsqd.create_topic("quick")
    session = wait_for(lambda: fake_lookupd.session(0))
    wait_for(lambda: "REGISTER quick" in session)

    async def create_and_delete() -> None:
        topic = nsqd.broker.get_topic("quick")
        topic.get_channel("gone")
        topic.delete_channel("gone")

    shared_broker_thread().call(create_and_delete)
    # as nsqd's lookupLoop: both notifications find the channel deleted when they are sent
    wait_for(lambda: session.count("UNREGISTER quick gone") == 2)
    assert "REGISTER quick gone" not in session


#: nsqd pings lookupd every 15 s (no flag); the embedded one is told to ping more often
REAL_PING_INTERVAL = 15.0
FAST_PING_MS = 200


def ping_interval(real_nsq: bool) -> float:
    return REAL_PING_INTERVAL if real_nsq else FAST_PING_MS / 1000.0


def registrations(session: list) -> set:
    return {command for command in session[2:] if command != "PING"}


def test_next_commands_reconnect_and_register_everything_again(nsqd_factory, fake_lookupd):
    # nothing watches an idle lookupd connection: the first command after lookupd went away
    # fails (and is dropped), the next one reconnects, registers every topic and channel, and
    # is sent itself
    nsqd = nsqd_factory(lookupd_tcp_addresses=[fake_lookupd.address])
    nsqd.create_topic("again")
    nsqd.create_channel("again", "ch")
    nsqd.create_topic("solo")
    wait_for(lambda: "REGISTER solo" in fake_lookupd.session(0))
    fake_lookupd.drop_connections()
    nsqd.create_topic("nudge1")
    nsqd.create_topic("nudge2")
    wanted = {"REGISTER again ch", "REGISTER solo", "REGISTER nudge1", "REGISTER nudge2"}
    wait_for(lambda: wanted <= registrations(fake_lookupd.session(1)))
    session = fake_lookupd.session(1)
    assert session[0] == b"  V1" and session[1][0] == "IDENTIFY"
    assert registrations(session) == wanted  # a topic with channels is registered by its channels
    assert len(fake_lookupd.sessions) == 2


@pytest.mark.embedded_only("nsqd pings every 15 s (no flag): this takes two pings, 30 s")
def test_pings_find_a_dropped_lookupd_and_reconnect(nsqd_factory, fake_lookupd):
    nsqd = nsqd_factory(lookupd_tcp_addresses=[fake_lookupd.address],
                        lookupd_ping_interval_ms=FAST_PING_MS)
    nsqd.create_topic("idle")
    wait_for(lambda: "REGISTER idle" in fake_lookupd.session(0))
    fake_lookupd.drop_connections()
    wait_for(lambda: "REGISTER idle" in fake_lookupd.session(1))


def test_pings_lookupd_on_a_ticker_even_while_busy(nsqd_factory, fake_lookupd, real_nsq):
    interval = ping_interval(real_nsq)
    nsqd = nsqd_factory(lookupd_tcp_addresses=[fake_lookupd.address],
                        lookupd_ping_interval_ms=FAST_PING_MS)
    deadline = nsqd.started_at + interval + 2.0
    busy = 0
    while "PING" not in fake_lookupd.session(0):
        assert time.monotonic() < deadline, "no PING within the ping interval"
        busy += 1
        nsqd.create_topic(f"busy{busy}")  # commands more often than the ping interval
        time.sleep(interval / 5)
    assert time.monotonic() - nsqd.started_at >= interval


def test_lookupd_knows_topics_and_channels(nsqd_with_lookupd):
    nsqd, lookupd = nsqd_with_lookupd
    nsqd.create_topic("known")
    nsqd.create_channel("known", "ch")
    wait_for(lambda: lookupd.http("GET", "/lookup", {"topic": "known"})[0] == 200
             and "ch" in lookupd.lookup("known")["channels"])
    producer = lookupd.lookup("known")["producers"][0]
    assert producer["tcp_port"] == nsqd.tcp_port and producer["http_port"] == nsqd.http_port
    nsqd.delete_topic("known")
    # lookupd keeps a non-ephemeral topic's registration, without this producer
    wait_for(lambda: lookupd.lookup("known")["producers"] == [])
    assert "known" not in lookupd.wait_for_producer(nsqd)["topics"]


def test_new_topic_precreates_channels_lookupd_knows(nsqd_with_lookupd):
    nsqd, lookupd = nsqd_with_lookupd
    lookupd.http_json("POST", "/channel/create", {"topic": "pre", "channel": "waiting"})
    nsqd.pub("pre", b"kept for the channel")
    stats = wait_for(lambda: nsqd.channel_stats("pre", "waiting"))
    assert stats["message_count"] == 1
    conn = consumer(nsqd, "pre", "waiting")
    assert conn.message().body == b"kept for the channel"


def test_ephemeral_channels_are_not_precreated(nsqd_with_lookupd):
    nsqd, lookupd = nsqd_with_lookupd
    lookupd.http_json("POST", "/channel/create", {"topic": "pre2", "channel": "tmp#ephemeral"})
    nsqd.pub("pre2", b"x")
    time.sleep(0.2)
    assert nsqd.channel_stats("pre2", "tmp#ephemeral") is None


def test_registers_again_after_lookupd_restarts(nsqd_factory, nsqlookupd):
    nsqd = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    nsqd.create_topic("survivor")
    nsqlookupd.wait_for_producer(nsqd, topic="survivor")
    nsqlookupd.stop()
    nsqlookupd.start()  # same ports, empty registrations
    nsqd.create_topic("nudge1")  # fails on the connection to the old process...
    nsqd.create_topic("nudge2")  # ...so this one reconnects and registers everything
    assert nsqlookupd.wait_for_producer(nsqd, topic="survivor", timeout=5)

