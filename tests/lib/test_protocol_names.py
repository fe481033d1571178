import pytest

from nsqcli.lib.protocol.identify import IdentifyResponse, build_identify
from nsqcli.lib.protocol.names import check_topic, is_ephemeral, valid_channel_name, valid_topic_name


@pytest.mark.parametrize(
    "name, ok",
    [
        ("a", True), ("a" * 64, True), ("a" * 65, False), ("", False),
        ("test.topic_1-x", True), ("t#ephemeral", True), ("#ephemeral", False),
        ("t#ephemeralx", False), ("a b", False), ("a/b", False), ("tøpic", False),
        (b"bytes_ok", True), (None, False), (5, False), ("a" * 54 + "#ephemeral", True),
        ("a" * 55 + "#ephemeral", False),
    ],
)
def test_name_rules(name, ok):
    assert valid_topic_name(name) is ok
    assert valid_channel_name(name) is ok


def test_check_topic_message():
    with pytest.raises(ValueError, match=r"invalid topic name 'a b'"):
        check_topic("a b")
    with pytest.raises(TypeError):
        check_topic(3)


def test_is_ephemeral():
    assert is_ephemeral("x#ephemeral") and is_ephemeral(b"x#ephemeral") and not is_ephemeral("x")


BASE = dict(client_id="c", hostname="h", user_agent="ua")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("heartbeat_interval_ms", 999, "heartbeat_interval"),
        ("heartbeat_interval_ms", -2, "heartbeat_interval"),
        ("output_buffer_size", 63, "output_buffer_size"),
        ("output_buffer_timeout_ms", -2, "output_buffer_timeout"),
        ("sample_rate", 100, "sample_rate"),
        ("sample_rate", -1, "sample_rate"),
        ("deflate_level", 0, "deflate_level"),
        ("deflate_level", 10, "deflate_level"),
        ("msg_timeout_ms", 500, "msg_timeout"),
        ("heartbeat_interval_ms", 1.5, "int"),
    ],
)
def test_identify_ranges(field, value, message):
    with pytest.raises(ValueError, match=message):
        build_identify(**BASE, **{field: value})


def test_identify_snappy_and_deflate_exclusive():
    with pytest.raises(ValueError, match="mutually exclusive"):
        build_identify(**BASE, snappy=True, deflate=True)


def test_identify_accepts_disable_values():
    data = build_identify(**BASE, heartbeat_interval_ms=-1, output_buffer_size=-1,
                          output_buffer_timeout_ms=-1, msg_timeout_ms=0)
    assert data["heartbeat_interval"] == -1 and data["msg_timeout"] == 0
    assert data["feature_negotiation"] is True


def test_identify_response_parsing():
    resp = IdentifyResponse.from_dict({"max_rdy_count": 100, "auth_required": True, "snappy": True})
    assert (resp.max_rdy_count, resp.auth_required, resp.snappy, resp.deflate) == (100, True, True, False)
    assert IdentifyResponse.legacy().max_rdy_count == 2500
    with pytest.raises(ValueError, match="max_rdy_count"):
        IdentifyResponse.from_dict({"max_rdy_count": "lots"})
