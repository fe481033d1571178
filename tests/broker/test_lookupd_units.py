"""Unit tests of the embedded nsqlookupd's pure parts: registration DB and the V1 session."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsqcli.broker.nsqlookupd import NSQLookupdOptions
from nsqcli.broker.nsqlookupd.protocol_v1 import LookupSessionV1, encode_response, parse_identify_body
from nsqcli.broker.nsqlookupd.registration_db import (
    CHANNEL, CLIENT, TOPIC, PeerInfo, Producer, Registration, RegistrationDB,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def peer(peer_id: str = "127.0.0.1:1", last_update: float = 1000.0) -> PeerInfo:
    return PeerInfo(peer_id, peer_id, "h", "127.0.0.1", 4150, 4151, "1.3.0", last_update)


# -- registration DB -------------------------------------------------------------------------


def test_registration_wildcards():
    r = Registration(CHANNEL, "t", "c")
    assert r.matches(CHANNEL, "t", "c") and r.matches(CHANNEL, "*", "*")
    assert r.matches(CHANNEL, "t", "*") and not r.matches(CHANNEL, "u", "*")
    assert not r.matches(TOPIC, "t", "*")


def test_add_producer_once_per_peer_and_remove_keeps_the_key():
    db = RegistrationDB()
    key = Registration(TOPIC, "t")
    p = peer()
    assert db.add_producer(key, Producer(p)) is True
    assert db.add_producer(key, Producer(p)) is False
    assert db.remove_producer(key, p.id) == (True, 0)
    assert db.remove_producer(key, p.id) == (False, 0)
    assert db.find_registrations(TOPIC, "*", "") == [key]
    assert db.remove_producer(Registration(TOPIC, "unknown"), p.id) == (False, 0)


def test_find_producers_dedupes_peers_across_registrations():
    db = RegistrationDB()
    a, b = peer("a:1"), peer("b:1")
    db.add_producer(Registration(CHANNEL, "t", "c1"), Producer(a))
    db.add_producer(Registration(CHANNEL, "t", "c2"), Producer(a))
    db.add_producer(Registration(CHANNEL, "t", "c2"), Producer(b))
    assert [p.peer.id for p in db.find_producers(CHANNEL, "t", "*")] == ["a:1", "b:1"]
    assert db.lookup_registrations("b:1") == [Registration(CHANNEL, "t", "c2")]


def test_remove_peer_everywhere():
    db = RegistrationDB()
    a = peer("a:1")
    for key in (Registration(CLIENT), Registration(TOPIC, "t"), Registration(CHANNEL, "t", "c")):
        db.add_producer(key, Producer(a))
    assert len(db.remove_peer("a:1")) == 3
    assert db.find_producers(TOPIC, "*", "*") == []
    assert len(db.find_registrations(TOPIC, "*", "")) == 1


def test_active_filters_inactive_and_tombstoned_with_injected_clock():
    clock = Clock()
    db = RegistrationDB(clock)
    fresh, stale = Producer(peer("f:1", 1000.0)), Producer(peer("s:1", 600.0))
    assert db.active([fresh, stale], inactive_timeout=300, tombstone_lifetime=45) == [fresh]
    fresh.tombstone(clock.now)
    assert db.active([fresh], 300, 45) == []
    clock.now += 44.9
    assert db.active([fresh], 300, 45) == []
    clock.now += 0.2
    assert db.active([fresh], 300, 45) == [fresh]
    assert not fresh.is_tombstoned(45, clock.now)


# -- IDENTIFY body ---------------------------------------------------------------------------

GOOD = {"broadcast_address": "b", "tcp_port": 1, "http_port": 2, "version": "v", "hostname": "h"}


def test_identify_body_keys_match_case_insensitively_and_extra_keys_are_ignored():
    body = json.dumps({"Broadcast_Address": "b", "TCP_PORT": 1, "http_port": 2, "version": "v",
                       "extra": [1]}).encode()
    info = parse_identify_body(body, "1.2.3.4:5")
    assert (info.broadcast_address, info.tcp_port, info.http_port, info.hostname) == ("b", 1, 2, "")
    assert info.remote_address == info.id == "1.2.3.4:5"


@pytest.mark.parametrize("body", [b"null", b"{}", json.dumps({**GOOD, "tcp_port": None}).encode()])
def test_identify_body_missing_fields(body):
    with pytest.raises(Exception, match="E_BAD_BODY IDENTIFY missing fields"):
        parse_identify_body(body, "x:1")


@pytest.mark.parametrize("body", [b"", b"\xff", b"3", json.dumps({**GOOD, "tcp_port": True}).encode(),
                                  json.dumps({**GOOD, "tcp_port": 1.5}).encode(),
                                  json.dumps({**GOOD, "version": 3}).encode()])
def test_identify_body_undecodable(body):
    with pytest.raises(Exception, match="E_BAD_BODY IDENTIFY failed to decode JSON body"):
        parse_identify_body(body, "x:1")


# -- the session, fed whole, byte by byte, and with trailing bytes ---------------------------


def _identify(fields: dict = GOOD) -> bytes:
    body = json.dumps(fields).encode()
    return b"IDENTIFY\n" + struct.pack(">l", len(body)) + body


def _session(db: RegistrationDB | None = None) -> LookupSessionV1:
    reply = {"tcp_port": 4160, "http_port": 4161, "version": "1.3.0",
             "broadcast_address": "127.0.0.1", "hostname": "h"}
    return LookupSessionV1(db or RegistrationDB(), "127.0.0.1:9", lambda: reply,
                           max_identify_body_size=1000)


STREAM = b"  V1" + b"PING\n" + _identify() + b"REGISTER t c\nUNREGISTER t c\n"
EXPECTED = (encode_response(b"OK")
            + encode_response(b'{"broadcast_address":"127.0.0.1","hostname":"h","http_port":4161,'
                              b'"tcp_port":4160,"version":"1.3.0"}')
            + encode_response(b"OK") + encode_response(b"OK"))


def test_session_whole_buffer():
    out = _session().receive_data(STREAM)
    assert (out.data, out.close) == (EXPECTED, False)


def test_session_byte_by_byte():
    session = _session()
    data = b"".join(session.receive_data(STREAM[i:i + 1]).data for i in range(len(STREAM)))
    assert data == EXPECTED


def test_session_partial_command_waits():
    session = _session()
    assert session.receive_data(STREAM + b"REGIS").data == EXPECTED
    assert session.receive_data(b"TER u\n").data == encode_response(b"OK")


def test_session_stops_after_a_fatal_error_and_ignores_the_rest():
    session = _session()
    out = session.receive_data(b"  V1BOGUS\nPING\n")
    assert (out.data, out.close) == (encode_response(b"E_INVALID invalid command BOGUS"), True)
    assert session.receive_data(b"PING\n").data == b""


@pytest.mark.parametrize("size", [-1, 1001])
def test_session_rejects_identify_body_sizes(size):
    out = _session().receive_data(b"  V1IDENTIFY\n" + struct.pack(">l", size))
    assert out.data == encode_response(b"E_BAD_BODY IDENTIFY failed to read body size")
    assert out.close


def test_session_registers_and_connection_lost_unregisters():
    db = RegistrationDB()
    session = _session(db)
    session.receive_data(STREAM + b"REGISTER t c\n")
    assert [p.peer.id for p in db.find_producers(CHANNEL, "t", "c")] == ["127.0.0.1:9"]
    removed = session.connection_lost()
    assert set(removed) == {Registration(CLIENT), Registration(TOPIC, "t"),
                            Registration(CHANNEL, "t", "c")}
    assert db.find_producers(CLIENT, "", "") == []


def test_options_validation():
    with pytest.raises(ValueError, match="inactive_producer_timeout_ms"):
        NSQLookupdOptions(inactive_producer_timeout_ms=-1)
    with pytest.raises(ValueError):
        NSQLookupdOptions(tcp_address="nonsense")
    with pytest.raises(ValueError, match="broadcast_address"):
        NSQLookupdOptions(broadcast_address="")


# -- fuzz: any bytes, any split: same replies, nothing but protocol answers escapes -------------

_PIECES = st.sampled_from([b"  V1", b"PING\n", b"REGISTER t c\n", b"UNREGISTER t\n", _identify(),
                           b"IDENTIFY\n", b"\x00\x00\x00\x02{}", b"\n", b"REGISTER bad! \n",
                           b"\r\n", b"X"])


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.one_of(_PIECES, st.binary(max_size=12)), max_size=12),
       cut=st.integers(min_value=0, max_value=200))
def test_session_fuzz_split_invariance(chunks, cut):
    stream = b"".join(chunks)
    whole = _session().receive_data(stream)
    split_session = _session()
    first = split_session.receive_data(stream[:cut])
    second = split_session.receive_data(stream[cut:])
    assert first.data + second.data == whole.data
    assert (first.close or second.close) == whole.close
