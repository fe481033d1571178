"""AsyncConn feature negotiation against the fake nsqd: TLS, snappy, deflate, AUTH."""

import asyncio
import logging
import ssl

import pytest
import trustme
from fake_nsqd import FakeNSQD, run, tls_contexts, write_ca

from nsqcli.lib.conn import AsyncConn
from nsqcli.lib.errors import AuthRequiredError, NSQError, NSQTimeoutError, ProtocolError
from nsqcli.lib.tls import TLSHandshakeError, make_ssl_context

SECRET = "s3cr3t-token-value"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    server_ctx, ca = tls_contexts()
    ca_path = write_ca(ca, str(tmp_path_factory.mktemp("ca")))
    return server_ctx, ca_path


async def round_trip(fake, conn, n=50):
    """Subscribe, receive n messages, FIN them all, publish one: proves both directions work."""
    await conn.wait_ready(2)
    assert await conn.subscribe("t", "c") == b"OK"
    conn.send_rdy(n)
    conn.on("message", lambda conn, message: message.finish())
    peer = fake.peers[0]
    peer.send_messages([b"payload %d " % i * 20 for i in range(n)])
    await fake.wait_for("FIN", n)
    assert await conn.publish("t", b"back") == b"OK"
    assert peer.commands[-1].body == b"back"


@pytest.mark.parametrize("compression", [None, "snappy", "deflate"])
def test_tls_with_verification(tls, compression):
    server_ctx, ca_path = tls

    async def main():
        async with FakeNSQD(tls_context=server_ctx,
                            identify_response={"snappy": True, "deflate": True}) as fake:
            options = {compression: True} if compression else {}
            conn = AsyncConn(fake.host, fake.port, tls_v1=True, tls_options={"ca_certs": ca_path},
                             **options)
            await round_trip(fake, conn)
            assert isinstance(conn.stream.socket, ssl.SSLSocket)
            assert conn._protocol.compression == compression
            conn.close()
    run(main())


def test_tls_with_an_ssl_context(tls):
    server_ctx, ca_path = tls

    async def main():
        async with FakeNSQD(tls_context=server_ctx) as fake:
            context = ssl.create_default_context(cafile=ca_path)
            conn = AsyncConn(fake.host, fake.port, tls_v1=True, tls_options=context)
            await round_trip(fake, conn, 5)
            conn.close()
    run(main())


def test_tls_wrong_ca_fails_and_cert_none_opts_out(tls, tmp_path):
    server_ctx, _ = tls
    other_ca = write_ca(trustme.CA(), str(tmp_path))

    async def main():
        async with FakeNSQD(tls_context=server_ctx) as fake:
            conn = AsyncConn(fake.host, fake.port, tls_v1=True, tls_options={"ca_certs": other_ca})
            with pytest.raises(TLSHandshakeError, match="certificate"):
                await conn.wait_ready(2)
            assert conn.closed()
            insecure = AsyncConn(fake.host, fake.port, tls_v1=True,
                                 tls_options={"ca_certs": other_ca, "cert_reqs": ssl.CERT_NONE})
            await insecure.wait_ready(2)
            insecure.close()
    run(main())


def test_tls_default_uses_system_cas_and_rejects_a_private_ca(tls):
    server_ctx, _ = tls

    async def main():
        async with FakeNSQD(tls_context=server_ctx) as fake:
            conn = AsyncConn(fake.host, fake.port, tls_v1=True)
            with pytest.raises(TLSHandshakeError):
                await conn.wait_ready(2)
    run(main())


def test_tls_requested_but_nsqd_has_none():
    async def main():
        async with FakeNSQD() as fake:
            conn = AsyncConn(fake.host, fake.port, tls_v1=True)
            with pytest.raises(ProtocolError, match="refusing plaintext"):
                await conn.wait_ready(2)
    run(main())


def test_tls_handshake_timeout_names_the_stage(tls):
    async def main():
        async def no_tls(peer):
            await peer.expect("IDENTIFY")
            peer.send_response(b'{"tls_v1": true, "max_rdy_count": 2500}')
            await asyncio.sleep(10)  # never answers the ClientHello

        async with FakeNSQD(no_tls) as fake:
            conn = AsyncConn(fake.host, fake.port, tls_v1=True, timeout=0.3)
            with pytest.raises(NSQTimeoutError, match="during TLS handshake"):
                await conn.wait_ready(3)
    run(main())


@pytest.mark.parametrize("compression", ["snappy", "deflate"])
def test_compression_without_tls(compression):
    async def main():
        async with FakeNSQD(identify_response={"snappy": True, "deflate": True}) as fake:
            conn = AsyncConn(fake.host, fake.port, **{compression: True}, deflate_level=1)
            await round_trip(fake, conn, 200)
            assert conn._protocol.compression == compression
            fake.peers[0].send_heartbeat()
            await fake.wait_for("NOP")
            conn.close()
    run(main())


def test_compression_not_offered_by_nsqd_stays_plain():
    async def main():
        async with FakeNSQD() as fake:  # snappy false in the reply
            conn = AsyncConn(fake.host, fake.port, snappy=True)
            await round_trip(fake, conn, 3)
            assert conn._protocol.compression is None
            conn.close()
    run(main())


def test_auth_success_events_and_secret_never_leaks(caplog):
    async def main():
        async with FakeNSQD(auth_secret=SECRET.encode()) as fake:
            conn = AsyncConn(fake.host, fake.port, auth_secret=SECRET)
            seen = []
            conn.on("auth", lambda conn, data: seen.append(("auth", data)))
            conn.on("auth_response", lambda conn, data: seen.append(("auth_response", data)))
            await conn.wait_ready(2)
            assert fake.peers[0].auth_secret == SECRET.encode()
            assert fake.transcript == ["IDENTIFY", "AUTH"]
            assert seen[1] == ("auth_response", {"identity": "test-user", "identity_url": "",
                                                 "permission_count": 1})
            assert SECRET.encode() not in seen[0][1]
            assert SECRET not in repr(conn) and SECRET not in repr(conn._options)
            assert SECRET not in repr(conn.__dict__.get("_protocol"))
            conn.close()
    with caplog.at_level(logging.DEBUG):
        run(main())
    assert SECRET not in caplog.text


def test_auth_failure_is_the_nsqd_error_without_the_secret(caplog):
    async def main():
        async with FakeNSQD(auth_secret=b"right") as fake:
            conn = AsyncConn(fake.host, fake.port, auth_secret=SECRET)
            with pytest.raises(NSQError) as info:
                await conn.wait_ready(2)
            assert info.value.code == "E_AUTH_FAILED"
            assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    with caplog.at_level(logging.DEBUG):
        run(main())
    assert SECRET not in caplog.text


def test_auth_required_without_a_secret():
    async def main():
        async with FakeNSQD(auth_secret=b"x") as fake:
            conn = AsyncConn(fake.host, fake.port)
            with pytest.raises(AuthRequiredError):
                await conn.wait_ready(2)
    run(main())


def test_auth_timeout_names_the_stage():
    async def main():
        async def no_auth_reply(peer):
            await peer.expect("IDENTIFY")
            peer.send_response(b'{"auth_required": true}')
            await peer.expect("AUTH")
            await asyncio.sleep(10)

        async with FakeNSQD(no_auth_reply) as fake:
            conn = AsyncConn(fake.host, fake.port, auth_secret="x", timeout=0.2)
            with pytest.raises(NSQTimeoutError, match="during AUTH"):
                await conn.wait_ready(2)
    run(main())


def test_tls_options_mapping():
    context = make_ssl_context({"cert_reqs": ssl.CERT_NONE})
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    context = make_ssl_context({"check_hostname": False})
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    context = make_ssl_context({"ssl_version": ssl.PROTOCOL_TLSv1_2})
    assert context.minimum_version == context.maximum_version == ssl.TLSVersion.TLSv1_2
    context = make_ssl_context(None)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    with pytest.raises(ValueError, match="check_hostname"):
        make_ssl_context({"cert_reqs": ssl.CERT_NONE, "check_hostname": True})
    with pytest.raises(ValueError, match="keyfile"):
        make_ssl_context({"keyfile": "/nonexistent"})
