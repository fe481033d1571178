"""Random and garbage input to the frame buffer, command parser and client state machine:
only the protocol's own error types may escape (h11's fuzz idea)."""

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsqcli.lib.protocol.client import ClientProtocol
from nsqcli.lib.protocol.commands import CommandParser, parse_mpub_body
from nsqcli.lib.protocol.constants import FRAME_TYPE_RESPONSE
from nsqcli.lib.protocol.errors import Error, ProtocolError
from nsqcli.lib.protocol.frames import FrameBuffer, encode_frame

# NSQCLI_FUZZ_EXAMPLES=20000 for the longer opt-in run.
EXAMPLES = int(os.environ.get("NSQCLI_FUZZ_EXAMPLES", "300"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
chunks = st.lists(st.binary(max_size=64), max_size=20)


@fuzz
@given(chunks)
def test_frame_buffer_only_raises_protocol_error(parts):
    buf = FrameBuffer(max_frame_size=4096)
    try:
        for part in parts:
            buf.feed(part)
            for _frame_type, data in buf.frames():
                assert isinstance(data, bytes)
    except ProtocolError:
        pass
    assert buf.buffered <= 4096 + 64 * 20


@fuzz
@given(chunks)
def test_command_parser_only_raises_protocol_error(parts):
    parser = CommandParser(max_body_size=4096)
    try:
        for part in parts:
            parser.feed(part)
    except ProtocolError:
        pass


@fuzz
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=100))
def test_mpub_parser_only_raises_protocol_error(payload, limit):
    try:
        parse_mpub_body(payload, limit)
    except ProtocolError:
        pass


def _structured_frames():
    frame = st.tuples(st.integers(min_value=0, max_value=2), st.binary(max_size=40)).map(
        lambda t: encode_frame(*t))
    json_reply = st.dictionaries(
        st.sampled_from(["max_rdy_count", "snappy", "deflate", "tls_v1", "auth_required", "version"]),
        st.one_of(st.booleans(), st.integers(), st.text(max_size=5), st.none()),
    ).map(lambda d: encode_frame(FRAME_TYPE_RESPONSE, json.dumps(d).encode()))
    return st.lists(st.one_of(frame, json_reply, st.binary(max_size=16)), max_size=10)


@fuzz
@given(_structured_frames(), st.booleans(), st.booleans())
def test_client_state_machine_only_raises_its_errors(parts, snappy, with_secret):
    proto = ClientProtocol({"snappy": snappy, "deflate": not snappy},
                           auth_secret=b"x" if with_secret else None, max_frame_size=4096)
    proto.initiate()
    try:
        for part in parts:
            proto.receive_data(part)
            if proto.state.value == "ready":
                proto.subscribe("t", "c")
    except Error:
        pass
