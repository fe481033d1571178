from nsqcli.lib import protocol


def test_pub_bytes():
    assert protocol.pub("t", b"ab") == b"PUB t\n\x00\x00\x00\x02ab"
