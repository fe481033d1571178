"""The client state machine driven by scripted server bytes (no sockets)."""

import json
import struct

import pytest

from nsqcli.lib.protocol import events as ev
from nsqcli.lib.protocol.client import AuthRequiredError, ClientProtocol, State
from nsqcli.lib.protocol.compression import DeflateCodec, SnappyCodec
from nsqcli.lib.protocol.constants import FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE
from nsqcli.lib.protocol.errors import LocalProtocolError, NSQError, ProtocolError
from nsqcli.lib.protocol.frames import MessageFrame, encode_frame, encode_message

MID = b"0123456789abcdef"


def ok():
    return encode_frame(FRAME_TYPE_RESPONSE, b"OK")


def reply(data):
    return encode_frame(FRAME_TYPE_RESPONSE, json.dumps(data).encode())


def error(text):
    return encode_frame(FRAME_TYPE_ERROR, text.encode())


def connected(**identify):
    proto = ClientProtocol(identify)
    proto.initiate()
    events = proto.receive_data(reply({"max_rdy_count": 50}))
    assert events[-1] == ev.HandshakeComplete()
    return proto


def subscribed():
    proto = connected()
    proto.subscribe("t", "c")
    assert proto.receive_data(ok()) == [ev.Response(b"OK", b"SUB")]
    assert proto.state is State.SUBSCRIBED
    return proto


def test_initiate_sends_magic_and_identify():
    proto = ClientProtocol({"client_id": "x"})
    assert proto.initiate() == b'  V2IDENTIFY\n\x00\x00\x00\x11{"client_id":"x"}'
    assert proto.state is State.IDENTIFYING


def test_plain_handshake_events_and_limits():
    proto = ClientProtocol({})
    proto.initiate()
    events = proto.receive_data(reply({"max_rdy_count": 50, "version": "1.3.0"}))
    assert [type(e) for e in events] == [ev.IdentifyResponseReceived, ev.HandshakeComplete]
    assert proto.identify_response.max_rdy_count == 50
    assert proto.state is State.READY


def test_legacy_ok_reply():
    proto = ClientProtocol({})
    proto.initiate()
    events = proto.receive_data(ok())
    assert events[0].response.raw == b"OK" and events[0].response.max_rdy_count == 2500
    assert events[1] == ev.HandshakeComplete()


@pytest.mark.parametrize("codec_cls, kind", [(SnappyCodec, "snappy"), (DeflateCodec, "deflate")])
def test_compression_upgrade_in_one_read(codec_cls, kind):
    """nsqd's JSON reply and its compressed OK can arrive in the same read."""
    proto = ClientProtocol({kind: True})
    proto.initiate()
    server = codec_cls()
    data = reply({kind: True}) + server.compress(ok())
    events = proto.receive_data(data)
    assert events[1:] == [ev.CompressionStarted(kind), ev.HandshakeComplete()]
    proto.subscribe("t", "c")
    assert proto.receive_data(server.compress(ok() + encode_message(1, 1, MID, b"hi"))) == [
        ev.Response(b"OK", b"SUB"),
        MessageFrame(1, 1, MID, b"hi"),
    ]
    # outgoing bytes are compressed from now on
    assert codec_cls().decompress(proto.encode_outgoing(b"RDY 1\n")) == b"RDY 1\n"


def test_compression_upgrade_byte_by_byte():
    proto = ClientProtocol({"snappy": True})
    proto.initiate()
    server = SnappyCodec()
    data = reply({"snappy": True}) + server.compress(ok())
    events = []
    for byte in data:
        events.extend(proto.receive_data(bytes([byte])))
    assert events[-1] == ev.HandshakeComplete()


def test_tls_then_snappy_then_auth():
    proto = ClientProtocol({"tls_v1": True, "snappy": True}, auth_secret=b"s3cret")
    proto.initiate()
    events = proto.receive_data(reply({"tls_v1": True, "snappy": True, "auth_required": True}))
    assert events[1:] == [ev.StartTLS()]
    assert proto.state is State.TLS_HANDSHAKE
    proto.tls_established()
    server = SnappyCodec()
    events = proto.receive_data(ok() + server.compress(ok()))
    assert events == [ev.CompressionStarted("snappy"), ev.AuthRequested()]
    assert proto.auth_command() == b"AUTH\n\x00\x00\x00\x06s3cret"
    events = proto.receive_data(server.compress(reply({"identity": "me", "permission_count": 1})))
    assert events == [ev.AuthResponseReceived({"identity": "me", "permission_count": 1}), ev.HandshakeComplete()]
    assert "s3cret" not in repr(proto)


def test_tls_requested_but_not_offered_refuses_plaintext():
    proto = ClientProtocol({"tls_v1": True})
    proto.initiate()
    with pytest.raises(ProtocolError, match="refusing plaintext"):
        proto.receive_data(reply({"tls_v1": False}))
    assert proto.state is State.ERROR


def test_auth_required_without_secret():
    proto = ClientProtocol({})
    proto.initiate()
    with pytest.raises(AuthRequiredError, match="no auth_secret"):
        proto.receive_data(reply({"auth_required": True}))


def test_invalid_identify_json():
    proto = ClientProtocol({})
    proto.initiate()
    with pytest.raises(ProtocolError, match="invalid IDENTIFY response"):
        proto.receive_data(encode_frame(FRAME_TYPE_RESPONSE, b"{nope"))
    assert proto.state is State.ERROR
    assert proto.receive_data(ok()) == []


def test_heartbeat_and_messages_while_subscribed():
    proto = subscribed()
    data = encode_frame(FRAME_TYPE_RESPONSE, b"_heartbeat_") + encode_message(7, 2, MID, b"x")
    assert proto.receive_data(data) == [ev.Heartbeat(), MessageFrame(7, 2, MID, b"x")]


def test_non_fatal_error_keeps_state_and_pending():
    proto = subscribed()
    proto.publish("t", b"x")
    events = proto.receive_data(error("E_FIN_FAILED FIN 0123 failed"))
    assert events == [ev.ErrorReceived(NSQError("E_FIN_FAILED", "FIN 0123 failed"), None)]
    assert not events[0].fatal and proto.state is State.SUBSCRIBED
    assert proto.receive_data(ok()) == [ev.Response(b"OK", b"PUB")]


def test_fatal_error_names_command_and_moves_to_error():
    proto = connected()
    proto.publish("t", b"x")
    events = proto.receive_data(error("E_BAD_MESSAGE PUB invalid message body size 0"))
    assert events[0].fatal and events[0].command == b"PUB"
    assert events[0].error.code == "E_BAD_MESSAGE"
    assert proto.state is State.ERROR


@pytest.mark.parametrize("text", [
    "E_INVALID cannot RDY in current state",
    "E_INVALID RDY count 3000 out of range 0-2500",
    "E_INVALID cannot FIN in current state",
    "E_INVALID REQ timeout 99999999 out of range 0-3600000",
    "E_INVALID invalid message ID",
    "E_INVALID invalid command FOO",
])
def test_fatal_error_of_a_command_nsqd_does_not_answer_is_not_the_pending_ones(text):
    # nsqd answers RDY/FIN/REQ/TOUCH only when they fail; sent before a PUB, their fatal error
    # means the PUB was never processed: it must not be reported as the PUB's own error
    proto = connected()
    proto.publish("t", b"x")
    events = proto.receive_data(error(text))
    assert events[0].fatal and events[0].command is None
    assert proto.state is State.ERROR and proto.pending_responses == 1


def test_responses_match_commands_in_order():
    proto = connected()
    proto.publish("t", b"a")
    proto.multi_publish("t", [b"a", b"b"])
    proto.deferred_publish("t", 10, b"c")
    assert proto.pending_responses == 3
    assert proto.receive_data(ok() * 3) == [
        ev.Response(b"OK", b"PUB"), ev.Response(b"OK", b"MPUB"), ev.Response(b"OK", b"DPUB")]


def test_unexpected_response_is_protocol_error():
    proto = connected()
    with pytest.raises(ProtocolError, match="no command pending"):
        proto.receive_data(ok())


def test_cls_close_wait():
    proto = subscribed()
    assert proto.close() == b"CLS\n"
    assert proto.state is State.CLOSING
    assert proto.finish(MID) == b"FIN " + MID + b"\n"  # in-flight may still be answered
    assert proto.receive_data(encode_frame(FRAME_TYPE_RESPONSE, b"CLOSE_WAIT")) == [
        ev.Response(b"CLOSE_WAIT", b"CLS")]


def test_message_frames_as_large_as_nsqd_can_send_are_accepted_once_subscribed():
    # nsqd with --max-msg-size above 16 MiB: its messages must not be refused (nsqd would
    # redeliver the message forever to a client that closes on it)
    proto = subscribed()
    body = b"b" * (17 * 1024 * 1024)
    frame = encode_message(5, 1, MID, body)
    events = []
    for start in range(0, len(frame), 1 << 20):  # as a socket delivers it, in pieces
        events += proto.receive_data(frame[start:start + (1 << 20)])
    assert events == [MessageFrame(5, 1, MID, body)]


def test_other_frames_stay_bounded_by_default():
    # a response or error frame announcing a huge size is refused on its header, subscribed or
    # not, and so is a message frame before SUB (a message frame is illegal there anyway)
    for proto in (connected(), subscribed()):
        with pytest.raises(ProtocolError, match=r"invalid frame size 2147483647 \(allowed 4..16777216\)"):
            proto.receive_data(struct.pack(">ll", 0x7FFFFFFF, FRAME_TYPE_RESPONSE))
    with pytest.raises(ProtocolError, match="invalid frame size 16777217"):
        connected().receive_data(struct.pack(">ll", 16 * 1024 * 1024 + 1, FRAME_TYPE_MESSAGE))
    # an explicit max_frame_size bounds every frame, messages included
    proto = ClientProtocol({}, max_frame_size=4096)
    proto.initiate()
    proto.receive_data(reply({}))
    proto.subscribe("t", "c")
    with pytest.raises(ProtocolError, match=r"invalid frame size 4097 \(allowed 4..4096\)"):
        proto.receive_data(struct.pack(">ll", 4097, FRAME_TYPE_MESSAGE))


def test_message_before_subscribe_is_protocol_error():
    proto = connected()
    with pytest.raises(ProtocolError, match="message frame received while ready"):
        proto.receive_data(encode_message(1, 1, MID, b"x"))


@pytest.mark.parametrize(
    "action, message",
    [
        (lambda p: p.ready(1), "cannot RDY while the connection is ready"),
        (lambda p: p.finish(MID), "cannot FIN"),
        (lambda p: p.close(), "cannot CLS"),
    ],
)
def test_commands_in_wrong_state(action, message):
    proto = connected()
    with pytest.raises(LocalProtocolError, match=message):
        action(proto)


def test_publish_before_handshake_is_refused():
    proto = ClientProtocol({})
    proto.initiate()
    with pytest.raises(LocalProtocolError, match="cannot PUB while the connection is identifying"):
        proto.publish("t", b"x")


def test_second_subscribe_refused():
    proto = subscribed()
    with pytest.raises(LocalProtocolError, match="cannot SUB"):
        proto.subscribe("t", "c")
