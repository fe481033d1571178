"""A peer that is not nsqd is named as such, whatever it answers (issue 13, item 7)."""

import pytest

from nsqcli.lib.protocol.errors import ProtocolError
from nsqcli.lib.protocol.frames import FrameBuffer


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n400 Bad Request",
    # python -m http.server answers a request line without a version this way (no status line)
    b'<!DOCTYPE HTML>\n<html lang="en">\n<head><title>Error response</title></head></html>\n',
    b"<html><body>nope</body></html>",
])
@pytest.mark.parametrize("piecewise", [False, True])
def test_an_http_server_is_named(reply, piecewise):
    buf = FrameBuffer()
    with pytest.raises(ProtocolError, match=r"^the peer is not an nsqd: it answered HTTP "
                                            r"\(an nsqd TCP endpoint is required"):
        for piece in ([reply[i:i + 1] for i in range(len(reply))] if piecewise else [reply]):
            buf.feed(piece)
            buf.next_frame()


def test_another_text_protocol_is_named_with_what_it_said():
    buf = FrameBuffer()
    buf.feed(b"SSH-2.0-OpenSSH_8.9p1\r\n")
    with pytest.raises(ProtocolError, match=r"not an nsqd: it answered text \('SSH-2\.0-OpenSSH"):
        buf.next_frame()


def test_a_binary_bad_size_is_still_a_bad_size():
    buf = FrameBuffer(max_frame_size=1024)
    buf.feed(b"\x7f\xff\xff\xff\x00\x00\x00\x00")
    with pytest.raises(ProtocolError, match=r"invalid frame size 2147483647 \(allowed 4..1024\)"):
        buf.next_frame()
