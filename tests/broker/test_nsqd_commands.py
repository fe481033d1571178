"""nsqd's command checks: each E_* code and text, and whether the connection survives it."""

from __future__ import annotations

import struct

import pytest

from nsqcli.lib.protocol import commands as cmd

from test_nsqd_wire import RawNSQ, consumer, fatal, still_open

ID = b"0123456789abcdef"


def size(n: int) -> bytes:
    return struct.pack(">l", n)


# ------------------------------------------------------------------ IDENTIFY


def test_identify_feature_negotiation_reply(nsqd):
    conn = RawNSQ(nsqd)
    reply = conn.identify(feature_negotiation=True, heartbeat_interval=5000,
                          output_buffer_size=4096, output_buffer_timeout=100, msg_timeout=5000)
    assert set(reply) >= {"max_rdy_count", "version", "max_msg_timeout", "msg_timeout", "tls_v1",
                          "deflate", "deflate_level", "max_deflate_level", "snappy",
                          "sample_rate", "auth_required", "output_buffer_size",
                          "output_buffer_timeout"}
    assert reply["max_rdy_count"] == 2500
    assert reply["max_msg_timeout"] == 900000
    assert reply["msg_timeout"] == 5000
    assert reply["output_buffer_size"] == 4096
    assert reply["output_buffer_timeout"] == 100
    assert reply["tls_v1"] is False and reply["auth_required"] is False
    assert reply["deflate_level"] == 6 and reply["max_deflate_level"] == 6


def test_identify_without_negotiation_answers_ok(nsqd):
    conn = RawNSQ(nsqd)
    assert conn.identify(client_id="x", hostname="h") == b"OK"


def test_identify_may_be_repeated_before_sub(nsqd):
    conn = RawNSQ(nsqd)
    conn.identify(output_buffer_size=-1, output_buffer_timeout=-1)
    conn.identify(output_buffer_size=0, output_buffer_timeout=0)
    still_open(conn)


def test_identify_defaults_come_from_options(nsqd_factory):
    nsqd = nsqd_factory(msg_timeout_ms=7000, max_rdy_count=50, max_deflate_level=3)
    reply = RawNSQ(nsqd).identify(feature_negotiation=True, deflate_level=9)
    assert reply["msg_timeout"] == 7000
    assert reply["max_rdy_count"] == 50
    assert reply["deflate_level"] == 3 and reply["max_deflate_level"] == 3


@pytest.mark.parametrize("fields, text", [
    ({"heartbeat_interval": 999}, "heartbeat interval (999) is invalid"),
    ({"heartbeat_interval": 60001}, "heartbeat interval (60001) is invalid"),
    ({"output_buffer_size": 63}, "output buffer size (63) is invalid"),
    ({"output_buffer_size": 65537}, "output buffer size (65537) is invalid"),
    ({"output_buffer_timeout": 24}, "output buffer timeout (24) is invalid"),
    ({"output_buffer_timeout": 30001}, "output buffer timeout (30001) is invalid"),
    ({"sample_rate": 100}, "sample rate (100) is invalid"),
    ({"msg_timeout": 999}, "msg timeout (999) is invalid"),
    ({"msg_timeout": 900001}, "msg timeout (900001) is invalid"),
])
def test_identify_out_of_range_fields(nsqd, fields, text):
    conn = RawNSQ(nsqd)
    conn.send(cmd.identify(fields))
    fatal(conn, f"E_BAD_BODY IDENTIFY {text}".encode())


def test_identify_bad_json(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(b"IDENTIFY\n" + size(5) + b"{nope")
    fatal(conn, b"E_BAD_BODY IDENTIFY failed to decode JSON body")


def test_identify_wrong_field_type(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(b"IDENTIFY\n" + size(29) + b'{"heartbeat_interval":"1000"}')
    fatal(conn, b"E_BAD_BODY IDENTIFY failed to decode JSON body")


def test_identify_body_sizes(nsqd_factory):
    nsqd = nsqd_factory(max_body_size=100)
    conn = RawNSQ(nsqd)
    conn.send(b"IDENTIFY\n" + size(0))
    fatal(conn, b"E_BAD_BODY IDENTIFY invalid body size 0")
    conn = RawNSQ(nsqd)
    conn.send(b"IDENTIFY\n" + size(101))  # refused before any body byte is sent
    fatal(conn, b"E_BAD_BODY IDENTIFY body too big 101 > 100")


def test_identify_after_sub_is_invalid(nsqd):
    conn = consumer(nsqd, "t", "c")
    conn.send(cmd.identify({}))
    fatal(conn, b"E_INVALID cannot IDENTIFY in current state")


def test_identify_both_compressions_fails(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(cmd.identify({"feature_negotiation": True, "snappy": True, "deflate": True}))
    fatal(conn, b"E_IDENTIFY_FAILED cannot enable both deflate and snappy compression")


# ------------------------------------------------------------------ SUB / RDY / CLS


def test_sub_with_heartbeats_disabled(nsqd):
    conn = RawNSQ(nsqd)
    conn.identify(heartbeat_interval=-1)
    conn.send(cmd.subscribe("t", "c"))
    fatal(conn, b"E_INVALID cannot SUB with heartbeats disabled")


def test_sub_bad_names(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(b"SUB bad!topic ch\n")
    fatal(conn, b'E_BAD_TOPIC SUB topic name "bad!topic" is not valid')
    conn = RawNSQ(nsqd)
    conn.send(b"SUB topic bad/ch\n")
    fatal(conn, b'E_BAD_CHANNEL SUB channel name "bad/ch" is not valid')


def test_second_sub_is_invalid(nsqd):
    conn = consumer(nsqd, "t", "c")
    conn.send(cmd.subscribe("t", "c2"))
    fatal(conn, b"E_INVALID cannot SUB in current state")


def test_max_channel_consumers(nsqd_factory):
    nsqd = nsqd_factory(max_channel_consumers=1)
    first = consumer(nsqd, "limited", "ch")  # noqa: F841 - keeps its connection open
    conn = RawNSQ(nsqd)
    conn.send(cmd.subscribe("limited", "ch"))
    fatal(conn, b"E_SUB_FAILED SUB failed consumers for limited:ch exceeds limit of 1")


def test_rdy_before_sub(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(cmd.ready(1))
    fatal(conn, b"E_INVALID cannot RDY in current state")


@pytest.mark.parametrize("line, text", [
    (b"RDY 2501\n", b"E_INVALID RDY count 2501 out of range 0-2500"),
    (b"RDY abc\n", b"E_INVALID RDY could not parse count abc"),
    (b"RDY -1\n", b"E_INVALID RDY could not parse count -1"),
])
def test_rdy_out_of_range_is_fatal(nsqd, line, text):
    conn = consumer(nsqd, "t", "c", rdy=None)
    conn.send(line)
    fatal(conn, text)


def test_rdy_limit_follows_option(nsqd_factory):
    nsqd = nsqd_factory(max_rdy_count=10)
    conn = consumer(nsqd, "t", "c", rdy=10)
    conn.send(cmd.ready(11))
    fatal(conn, b"E_INVALID RDY count 11 out of range 0-10")


def test_rdy_without_count_means_one(nsqd):
    nsqd.mpub("rdy1", [b"a", b"b"])
    conn = consumer(nsqd, "rdy1", "c", rdy=None)
    conn.send(b"RDY\n")
    conn.message()
    conn.nothing_for(0.3)


def test_cls(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(cmd.cls())
    fatal(conn, b"E_INVALID cannot CLS in current state")
    nsqd.pub("cls", b"one")
    conn = consumer(nsqd, "cls", "c", rdy=1)
    msg = conn.message()
    conn.send(cmd.cls())
    assert conn.response() == b"CLOSE_WAIT"
    conn.send(cmd.ready(5))  # ignored after CLS
    conn.send(cmd.finish(msg.id))  # FIN still allowed while closing
    nsqd.pub("cls", b"two")
    conn.nothing_for(0.3)
    still_open(conn)


# ------------------------------------------------------------------ FIN / REQ / TOUCH


@pytest.mark.parametrize("line, name", [
    (b"FIN " + ID + b"\n", "FIN"), (b"REQ " + ID + b" 0\n", "REQ"), (b"TOUCH " + ID + b"\n", "TOUCH"),
])
def test_consumer_commands_need_sub(nsqd, line, name):
    conn = RawNSQ(nsqd)
    conn.send(line)
    fatal(conn, f"E_INVALID cannot {name} in current state".encode())


@pytest.mark.parametrize("line, code", [
    (b"FIN " + ID + b"\n", "E_FIN_FAILED FIN"),
    (b"REQ " + ID + b" 0\n", "E_REQ_FAILED REQ"),
    (b"TOUCH " + ID + b"\n", "E_TOUCH_FAILED TOUCH"),
])
def test_unknown_ids_fail_without_closing(nsqd, line, code):
    conn = consumer(nsqd, "t", "c")
    conn.send(line)
    assert conn.error() == f"{code} {ID.decode()} failed ID not in flight".encode()
    still_open(conn)


def test_fin_of_another_consumers_message(nsqd):
    nsqd.pub("owned", b"x")
    first = consumer(nsqd, "owned", "c")
    msg = first.message()
    second = consumer(nsqd, "owned", "c")
    second.send(cmd.finish(msg.id))
    assert second.error() == b"E_FIN_FAILED FIN " + msg.id + b" failed client does not own message"
    still_open(second)


@pytest.mark.parametrize("line, text", [
    (b"FIN 123\n", b"E_INVALID invalid message ID"),
    (b"REQ 123 0\n", b"E_INVALID invalid message ID"),
    (b"TOUCH 123\n", b"E_INVALID invalid message ID"),
    (b"FIN\n", b"E_INVALID FIN insufficient number of params"),
    (b"REQ " + ID + b"\n", b"E_INVALID REQ insufficient number of params"),
    (b"REQ " + ID + b" soon\n", b"E_INVALID REQ could not parse timeout soon"),
    (b"TOUCH\n", b"E_INVALID TOUCH insufficient number of params"),
])
def test_malformed_consumer_commands_are_fatal(nsqd, line, text):
    conn = consumer(nsqd, "t", "c")
    conn.send(line)
    fatal(conn, text)


# ------------------------------------------------------------------ PUB / MPUB / DPUB


def test_pub_bad_topic(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(b"PUB bad!t\n")  # refused before the body
    fatal(conn, b'E_BAD_TOPIC PUB topic name "bad!t" is not valid')


def test_pub_sizes(nsqd_factory):
    nsqd = nsqd_factory(max_msg_size=100)
    conn = RawNSQ(nsqd)
    conn.send(b"PUB t\n" + size(0))
    fatal(conn, b"E_BAD_MESSAGE PUB invalid message body size 0")
    conn = RawNSQ(nsqd)
    conn.send(b"PUB t\n" + size(101))  # refused before the body
    fatal(conn, b"E_BAD_MESSAGE PUB message too big 101 > 100")
    conn = RawNSQ(nsqd)
    conn.pub("t", b"x" * 100)


def test_mpub(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(cmd.mpub("multi", [b"a", b"b\nc", b"d"]))
    conn.ok()
    assert nsqd.topic_stats("multi")["message_count"] == 3


def test_mpub_bad_topic_repeats_its_code(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(b"MPUB bad!t\n")
    fatal(conn, b'E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "bad!t" is not valid')


@pytest.mark.parametrize("payload, text", [
    (size(0), b"E_BAD_BODY MPUB invalid message count 0"),
    (size(2) + size(1) + b"a" + size(0), b"E_BAD_MESSAGE MPUB invalid message(1) body size 0"),
    (size(1) + size(101) + b"x" * 101, b"E_BAD_MESSAGE MPUB message too big 101 > 100"),
    (size(200) + size(1) + b"a", b"E_BAD_BODY MPUB invalid message count 200"),
])
def test_mpub_bad_payloads(nsqd_factory, payload, text):
    nsqd = nsqd_factory(max_msg_size=100, max_body_size=1000)
    conn = RawNSQ(nsqd)
    conn.send(b"MPUB t\n" + size(len(payload)) + payload)
    fatal(conn, text)


def test_mpub_body_sizes(nsqd_factory):
    nsqd = nsqd_factory(max_body_size=1000)
    conn = RawNSQ(nsqd)
    conn.send(b"MPUB t\n" + size(1001))
    fatal(conn, b"E_BAD_BODY MPUB body too big 1001 > 1000")
    conn = RawNSQ(nsqd)
    conn.send(b"MPUB t\n" + size(0))
    fatal(conn, b"E_BAD_BODY MPUB invalid body size 0")


def test_dpub_checks(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(b"DPUB t 3600001\n")
    fatal(conn, b"E_INVALID DPUB timeout 3600001 out of range 0-3600000")
    conn = RawNSQ(nsqd)
    conn.send(b"DPUB t later\n")
    fatal(conn, b"E_INVALID DPUB could not parse timeout later")
    conn = RawNSQ(nsqd)
    conn.send(b"DPUB t\n")
    fatal(conn, b"E_INVALID DPUB insufficient number of parameters")
    conn = RawNSQ(nsqd)
    conn.send(b"DPUB t 10\n" + size(0))
    fatal(conn, b"E_BAD_MESSAGE DPUB invalid message body size 0")
    conn = RawNSQ(nsqd)
    conn.send(cmd.dpub("t", 1000, b"later"))
    conn.ok()


def test_dpub_limit_follows_max_req_timeout(nsqd_factory):
    nsqd = nsqd_factory(max_req_timeout_ms=5000)
    conn = RawNSQ(nsqd)
    conn.send(b"DPUB t 5001\n")
    fatal(conn, b"E_INVALID DPUB timeout 5001 out of range 0-5000")


def test_auth_when_disabled(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(cmd.auth(b"secret"))
    fatal(conn, b"E_AUTH_DISABLED AUTH disabled")


def test_auth_with_params_is_invalid(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(b"AUTH extra\n")
    fatal(conn, b"E_INVALID AUTH invalid number of parameters")


def test_long_line_closes_connection(nsqd):
    conn = RawNSQ(nsqd)
    conn.send(b"PUB " + b"x" * 70000)
    assert conn.is_closed()
