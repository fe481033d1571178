"""Pure tests of the raw/jsonl record formats and their detection."""

import base64
import json

import pytest
from hypothesis import given, strategies as st

from nsqcli.archive.format import (
    JsonlEncoder, RecordError, check_format, decode_jsonl, detect_format, encode_jsonl,
    encode_raw, is_gzip,
)


def test_raw_is_body_and_newline_like_go():
    assert encode_raw(b"hello") == b"hello\n"
    assert encode_raw(b"a\nb") == b"a\nb\n"  # Go does not escape embedded newlines


def test_jsonl_text_body_fields_and_order():
    line = encode_jsonl("events", b"0123456789abcdef", 1700000000123456789, 2, "héllo\n\"x\"".encode())
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    obj = json.loads(line)
    assert obj == {"topic": "events", "id": "0123456789abcdef", "timestamp": 1700000000123456789,
                   "attempts": 2, "body": "héllo\n\"x\""}
    assert list(obj) == ["topic", "id", "timestamp", "attempts", "body"]


def test_jsonl_binary_body_uses_base64():
    body = b"\xff\x00\xfe\n"
    obj = json.loads(encode_jsonl("t", b"0" * 16, 1, 1, body))
    assert "body" not in obj
    assert base64.b64decode(obj["body_base64"]) == body


@given(st.binary(min_size=1, max_size=200), st.integers(0, 2**63 - 1), st.integers(1, 65535))
def test_jsonl_round_trip_is_exact(body, timestamp, attempts):
    enc = JsonlEncoder("topic.name#ephemeral")
    record = decode_jsonl(enc.encode(b"abcdefabcdef0123", timestamp, attempts, body))
    assert record.body == body
    assert record.topic == "topic.name#ephemeral"
    assert record.id == "abcdefabcdef0123"
    assert (record.timestamp, record.attempts) == (timestamp, attempts)


@given(st.text(min_size=1, max_size=100))
def test_jsonl_text_round_trip_keeps_text_key(text):
    body = text.encode("utf-8", "surrogatepass")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return
    obj = json.loads(encode_jsonl("t", b"x" * 16, 0, 1, body))
    assert obj["body"].encode("utf-8") == body


def test_decode_minimal_record_and_errors():
    assert decode_jsonl(b'{"body":"x"}').body == b"x"
    assert decode_jsonl('{"body_base64":"AAE="}').body == b"\x00\x01"
    for bad, why in [
        (b"not json", "invalid JSON"),
        (b"[1,2]", "expected a JSON object"),
        (b'{"topic":"t"}', "neither"),
        (b'{"body":5}', "'body' must be a string"),
        (b'{"body_base64":"!!!"}', "invalid body_base64"),
        (b'{"body":"x","timestamp":"soon"}', "'timestamp' must be an integer"),
        (b'{"body":"x","topic":3}', "'topic' must be a string"),
    ]:
        with pytest.raises(RecordError, match=why):
            decode_jsonl(bad)


def test_detection():
    assert is_gzip(b"\x1f\x8b\x08\x00") and not is_gzip(b"{\"body\"")
    assert detect_format(b'{"topic":"t","body":"x"}\n') == "jsonl"
    assert detect_format(b'\n\n{"body_base64":"AA=="}\n') == "jsonl"
    # JSON message bodies archived raw are raw: no body key
    assert detect_format(b'{"user":1,"event":"click"}\n') == "raw"
    assert detect_format(b"plain text\n{\"body\":\"x\"}\n") == "raw"
    assert detect_format(b"") == "raw"
    # a first line cut short by the detection window
    assert detect_format(b'{"topic":"t","id":"0123456789abcdef","timestamp":1,"body":"xxxx') == "jsonl"


def test_check_format():
    assert check_format("jsonl") == "jsonl"
    with pytest.raises(ValueError, match="unknown record format 'csv'"):
        check_format("csv")


def test_decode_many_matches_line_by_line_or_declines():
    from nsqcli.archive.format import decode_jsonl_many

    lines = [encode_jsonl("t", b"%016d" % i, i, 1, body).rstrip(b"\n")
             for i, body in enumerate([b"a", b"\xff\x00", b"x\ny", "é".encode()])]
    lines.append(b'{"body":"minimal"}')
    assert decode_jsonl_many(lines) == [decode_jsonl(line) for line in lines]
    for bad in [b"{oops", b'{"body":1}', b"[]", b'{"body":"a"},{"body":"b"}', b'{"body":"x","timestamp":1.5}']:
        assert decode_jsonl_many(lines[:2] + [bad]) is None
