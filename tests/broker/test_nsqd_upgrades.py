"""IDENTIFY upgrades: snappy, deflate and TLS (with and without tls_required)."""

from __future__ import annotations

import json
import ssl
import urllib.request

import pytest

from nsqcli.broker.handles import NSQ_ACCEPT
from nsqcli.lib.protocol import commands as cmd
from nsqcli.lib.protocol.compression import make_codec
from nsqcli.lib.protocol.frames import FrameBuffer

from test_nsqd_wire import RawNSQ, fatal


@pytest.mark.parametrize("kind", ["snappy", "deflate"])
def test_compression_upgrade(nsqd, kind):
    conn = RawNSQ(nsqd)
    reply = conn.identify(feature_negotiation=True, heartbeat_interval=1000, **{kind: True})
    assert reply[kind] is True
    conn.upgrade(kind)
    conn.pub("compressed", b"y" * 2000)
    conn.sub("compressed", "ch", rdy=1)
    assert conn.message().body == b"y" * 2000
    stats = nsqd.channel_stats("compressed", "ch")["clients"][0]
    assert stats[kind] is True


def test_deflate_level_is_negotiated(nsqd):
    conn = RawNSQ(nsqd)
    reply = conn.identify(feature_negotiation=True, deflate=True, deflate_level=2)
    assert reply["deflate"] is True and reply["deflate_level"] == 2
    conn.upgrade("deflate", 2)


def test_compression_disabled_by_option(nsqd_factory):
    nsqd = nsqd_factory(snappy=False, deflate=False)
    conn = RawNSQ(nsqd)
    reply = conn.identify(feature_negotiation=True, snappy=True)
    assert reply["snappy"] is False
    conn.pub("plain", b"x")  # still uncompressed


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file, ca_file = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    ca.cert_pem.write_to_path(str(ca_file))
    return {"cert": str(cert_file), "key": str(key_file), "ca": str(ca_file)}


class TLSConn:
    """A raw connection that upgrades to TLS after IDENTIFY, as nsqd expects."""

    def __init__(self, nsqd, certs, **identify):
        self.raw = RawNSQ(nsqd)
        self.reply = self.raw.identify(feature_negotiation=True, tls_v1=True, **identify)
        context = ssl.create_default_context(cafile=certs["ca"])
        self.sock = context.wrap_socket(self.raw.sock, server_hostname="127.0.0.1")
        self.frames = FrameBuffer()
        self.codec = None

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.codec.compress(data) if self.codec else data)

    def frame(self):
        while True:
            frame = self.frames.next_frame()
            if frame is not None and frame != (0, b"_heartbeat_"):
                return frame
            if frame is None:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed")
                self.frames.feed(self.codec.decompress(data) if self.codec else data)


def test_tls_upgrade(nsqd_factory, certs):
    nsqd = nsqd_factory(tls_cert=certs["cert"], tls_key=certs["key"])
    conn = TLSConn(nsqd, certs, heartbeat_interval=1000)
    assert conn.reply["tls_v1"] is True
    assert conn.frame() == (0, b"OK")
    conn.send(cmd.pub("secure", b"x") + cmd.subscribe("secure", "ch") + cmd.ready(1))
    assert conn.frame() == (0, b"OK")
    assert conn.frame() == (0, b"OK")
    assert conn.frame()[0] == 2
    client = nsqd.channel_stats("secure", "ch")["clients"][0]
    assert client["tls"] is True and client["tls_version"].startswith("TLS1.")


def test_tls_then_deflate(nsqd_factory, certs):
    nsqd = nsqd_factory(tls_cert=certs["cert"], tls_key=certs["key"])
    conn = TLSConn(nsqd, certs, deflate=True)
    assert conn.frame() == (0, b"OK")  # TLS is up
    rest = conn.frames.take_remaining()
    conn.codec = make_codec("deflate", 6)
    if rest:
        conn.frames.feed(conn.codec.decompress(rest))
    assert conn.frame() == (0, b"OK")  # deflate is up
    conn.send(cmd.pub("secure2", b"z"))
    assert conn.frame() == (0, b"OK")


def test_no_tls_without_certificate(nsqd):
    reply = RawNSQ(nsqd).identify(feature_negotiation=True, tls_v1=True)
    assert reply["tls_v1"] is False


def test_tls_required_refuses_commands_before_tls(nsqd_factory, certs):
    nsqd = nsqd_factory(tls_cert=certs["cert"], tls_key=certs["key"], tls_required="tcp-https")
    conn = RawNSQ(nsqd)
    conn.send(cmd.pub("t", b"x"))
    fatal(conn, b"E_INVALID cannot PUB in current state (TLS required)")
    conn = TLSConn(nsqd, certs)
    assert conn.frame() == (0, b"OK")
    conn.send(cmd.pub("t", b"x"))
    assert conn.frame() == (0, b"OK")


def https(nsqd, certs, method: str, path: str) -> tuple[int, bytes]:
    """One request to nsqd's HTTPS listener (its certificate verified, no proxies)."""
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=certs["ca"])))
    request = urllib.request.Request(f"https://127.0.0.1:{nsqd.https_port}{path}", method=method,
                                     data=b"" if method == "POST" else None,
                                     headers={"Accept": NSQ_ACCEPT})
    with opener.open(request, timeout=5) as reply:
        return reply.status, reply.read()


def test_tls_required_refuses_plain_http_and_points_to_https(nsqd_factory, certs):
    nsqd = nsqd_factory(tls_cert=certs["cert"], tls_key=certs["key"], tls_required=True)
    assert nsqd.https_port not in (0, nsqd.http_port)
    for path in ("/ping", "/stats", "/info"):  # /ping too: the fixtures take this 403 as "up"
        assert nsqd.http("GET", path) == (
            403, b'{"message": "TLS_REQUIRED", "https_port": %d}' % nsqd.https_port)
    assert https(nsqd, certs, "GET", "/ping") == (200, b"OK")
    assert https(nsqd, certs, "POST", "/topic/create?topic=over_https")[0] == 200
    status, body = https(nsqd, certs, "GET", "/stats?format=json")
    assert [t["topic_name"] for t in json.loads(body)["topics"]] == ["over_https"]


def test_https_without_tls_required_serves_the_same_api(nsqd_factory, certs):
    nsqd = nsqd_factory(tls_cert=certs["cert"], tls_key=certs["key"])
    nsqd.create_topic("both")
    status, body = https(nsqd, certs, "GET", "/stats?format=json&topic=both")
    assert json.loads(body)["topics"][0]["topic_name"] == "both"


def test_identify_is_exempt_from_tls_policy(nsqd_factory, certs):
    nsqd = nsqd_factory(tls_cert=certs["cert"], tls_key=certs["key"], tls_required="tcp-https")
    reply = RawNSQ(nsqd).identify(feature_negotiation=True)
    assert json.dumps(reply)  # answered, not refused
