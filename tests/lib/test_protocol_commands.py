"""Every V2 command to its exact bytes, and the parser reading them back."""

import struct

import pytest

from nsqcli.lib.protocol import commands
from nsqcli.lib.protocol.commands import Command, CommandParser, CommandReader, parse_mpub_body
from nsqcli.lib.protocol.errors import LocalProtocolError, ProtocolError

MID = b"0123456789abcdef"


def size(n):
    return struct.pack(">l", n)


COMMAND_BYTES = [
    (commands.magic(), b"  V2"),
    (commands.identify({"a": 1}), b"IDENTIFY\n" + size(7) + b'{"a":1}'),
    (commands.auth(b"secret"), b"AUTH\n" + size(6) + b"secret"),
    (commands.auth("s\u00e9"), b"AUTH\n" + size(3) + "s\u00e9".encode()),
    (commands.subscribe("t", "c"), b"SUB t c\n"),
    (commands.subscribe(b"t.x_y-z", "ch#ephemeral"), b"SUB t.x_y-z ch#ephemeral\n"),
    (commands.ready(0), b"RDY 0\n"),
    (commands.ready(2500), b"RDY 2500\n"),
    (commands.finish(MID), b"FIN " + MID + b"\n"),
    (commands.finish(MID.decode()), b"FIN " + MID + b"\n"),
    (commands.requeue(MID), b"REQ " + MID + b" 0\n"),
    (commands.requeue(MID, 1500), b"REQ " + MID + b" 1500\n"),
    (commands.touch(MID), b"TOUCH " + MID + b"\n"),
    (commands.nop(), b"NOP\n"),
    (commands.cls(), b"CLS\n"),
    (commands.pub("t", b"hello"), b"PUB t\n" + size(5) + b"hello"),
    (commands.pub("t", "h\u00e9"), b"PUB t\n" + size(3) + "h\u00e9".encode()),
    (commands.dpub("t", 250, b"x"), b"DPUB t 250\n" + size(1) + b"x"),
    (
        commands.mpub("t", [b"ab", b"c"]),
        b"MPUB t\n" + size(4 + 4 + 2 + 4 + 1) + size(2) + size(2) + b"ab" + size(1) + b"c",
    ),
]


@pytest.mark.parametrize("encoded, expected", COMMAND_BYTES)
def test_command_bytes(encoded, expected):
    assert encoded == expected


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: commands.subscribe("bad topic", "c"), "invalid topic"),
        (lambda: commands.subscribe("t", ""), "invalid channel"),
        (lambda: commands.subscribe("t" * 65, "c"), "invalid topic"),
        (lambda: commands.ready(-1), ">= 0"),
        (lambda: commands.ready("5"), "int"),
        (lambda: commands.ready(True), "int"),
        (lambda: commands.finish(b"short"), "16 bytes"),
        (lambda: commands.requeue(MID, -5), ">= 0"),
        (lambda: commands.pub("t", b""), "empty"),
        (lambda: commands.pub("t/x", b"a"), "invalid topic"),
        (lambda: commands.pub("t", 5), "bytes or str"),
        (lambda: commands.mpub("t", []), "at least one"),
        (lambda: commands.mpub("t", b"abc"), "list"),
        (lambda: commands.mpub("t", [b"a", b""]), "empty"),
        (lambda: commands.dpub("t", -1, b"a"), ">= 0"),
        (lambda: commands.identify("x"), "dict"),
        (lambda: commands.auth(b""), "empty"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(LocalProtocolError, match=message) as info:
        call()
    assert isinstance(info.value, ValueError)


def _stream():
    parts = [expected for _, expected in COMMAND_BYTES[1:]]
    return b"  V2" + b"".join(parts)


EXPECTED_NAMES = [
    b"IDENTIFY", b"AUTH", b"AUTH", b"SUB", b"SUB", b"RDY", b"RDY", b"FIN", b"FIN", b"REQ", b"REQ",
    b"TOUCH", b"NOP", b"CLS", b"PUB", b"PUB", b"DPUB", b"MPUB",
]


def test_parser_whole_buffer():
    parser = CommandParser()
    cmds = parser.feed(_stream())
    assert parser.magic == b"  V2"
    assert [c.name for c in cmds] == EXPECTED_NAMES
    assert b"".join(c.encode() for c in cmds) == _stream()[4:]
    assert cmds[3] == Command(b"SUB", (b"t", b"c"))
    assert cmds[16] == Command(b"DPUB", (b"t", b"250"), b"x")


def test_parser_one_byte_at_a_time():
    parser = CommandParser()
    cmds = []
    for byte in _stream():
        cmds.extend(parser.feed(bytes([byte])))
    assert [c.name for c in cmds] == EXPECTED_NAMES


def test_parser_trailing_partial_command_waits():
    parser = CommandParser()
    cmds = parser.feed(_stream() + b"PUB t\n" + size(10) + b"abc")
    assert [c.name for c in cmds] == EXPECTED_NAMES
    assert parser.feed(b"defghij") == [Command(b"PUB", (b"t",), b"abcdefghij")]


def test_parser_rejects_negative_body_size():
    parser = CommandParser()
    with pytest.raises(ProtocolError, match="invalid body size -1"):
        parser.feed(b"  V2PUB t\n" + size(-1))


def test_command_line_tolerates_carriage_return():
    assert commands.parse_command_line(b"RDY 5\r") == (b"RDY", (b"5",))


def test_command_reader_steps():
    reader = CommandReader()
    reader.feed(b"PUB t\n\x00\x00")
    assert reader.read_line() == b"PUB t"
    assert reader.read_size() is None
    reader.feed(b"\x00\x02ok")
    assert reader.read_size() == 2
    assert reader.read_exact(2) == b"ok"
    assert reader.read_line() is None


def test_command_reader_line_limit():
    reader = CommandReader(max_line_length=10)
    reader.feed(b"x" * 11)
    with pytest.raises(ProtocolError, match="too long"):
        reader.read_line()


def test_mpub_unchecked_is_mpub_for_valid_arguments():
    for bodies in ([b"a"], [b"a", b"bc", b"\n" * 300], [b"%d" % i for i in range(1000)]):
        expected = b"MPUB t\n" + size(4 + sum(4 + len(b) for b in bodies)) + size(len(bodies)) + b"".join(
            size(len(b)) + b for b in bodies)
        assert commands.mpub_unchecked(b"t", bodies) == expected == commands.mpub("t", bodies)


def test_mpub_body_round_trip_and_errors():
    payload = commands.mpub_body([b"a", b"bc"])
    assert parse_mpub_body(payload, 10) == [b"a", b"bc"]
    with pytest.raises(ProtocolError, match="too big 2 > 1"):
        parse_mpub_body(payload, 1)
    with pytest.raises(ProtocolError, match="invalid message count 0"):
        parse_mpub_body(size(0), 10)
    with pytest.raises(ProtocolError, match="failed to read message body"):
        parse_mpub_body(payload[:-1], 10)
    with pytest.raises(ProtocolError, match="body size 0"):
        parse_mpub_body(size(1) + size(0), 10)
