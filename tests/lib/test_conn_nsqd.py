"""AsyncConn end to end against an nsqd (the embedded one, or a real one via NSQCLI_TEST_NSQD)."""

import asyncio

import pytest
import trustme
from auth_server import AuthServer
from fake_nsqd import run

from nsqcli.lib.conn import AsyncConn
from nsqcli.lib.errors import NSQError
from nsqcli.lib.tls import TLSHandshakeError


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """(cert path, key path, CA path) for 127.0.0.1 from a throwaway trustme CA."""
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = [str(directory / name) for name in ("cert.pem", "key.pem", "ca.pem")]
    cert.cert_chain_pems[0].write_to_path(paths[0])
    cert.private_key_pem.write_to_path(paths[1])
    ca.cert_pem.write_to_path(paths[2])
    return paths


async def pub_sub_round_trip(nsqd, topic, count=20, **options):
    """Publish ``count`` messages on one connection, consume and FIN them on another."""
    producer = AsyncConn(nsqd.host, nsqd.tcp_port, **options)
    consumer = AsyncConn(nsqd.host, nsqd.tcp_port, **options)
    await asyncio.gather(producer.wait_ready(3), consumer.wait_ready(3))
    bodies = [b"message %d " % i + b"x" * i for i in range(count)]
    assert await producer.publish(topic, bodies[0]) == b"OK"
    assert await producer.multi_publish(topic, bodies[1:]) == b"OK"
    received = []
    done = asyncio.get_running_loop().create_future()

    def on_message(conn, message):
        received.append(message.body)
        message.finish()
        if len(received) == count and not done.done():
            done.set_result(None)

    consumer.on("message", on_message)
    assert await consumer.subscribe(topic, "ch") == b"OK"
    consumer.send_rdy(count)
    await asyncio.wait_for(done, 5)
    assert sorted(received) == sorted(bodies)
    assert await consumer.start_close() == b"CLOSE_WAIT"
    await consumer.flush()
    producer.close()
    consumer.close()
    return producer, consumer


def wait_channel_drained(nsqd, topic, channel="ch", timeout=3.0):
    import time

    deadline = time.monotonic() + timeout
    while True:
        stats = nsqd.channel_stats(topic, channel)
        if stats and stats["depth"] == 0 and stats["in_flight_count"] == 0:
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"channel not drained: {stats}")
        time.sleep(0.02)


def test_pub_sub_round_trip(nsqd):
    producer, _ = run(pub_sub_round_trip(nsqd, "conn_plain"))
    assert producer.identify_response.max_rdy_count > 0
    stats = wait_channel_drained(nsqd, "conn_plain")
    assert stats["message_count"] == 20


@pytest.mark.parametrize("compression", ["snappy", "deflate"])
def test_compression_round_trip(nsqd, compression):
    run(pub_sub_round_trip(nsqd, f"conn_{compression}", **{compression: True}))
    wait_channel_drained(nsqd, f"conn_{compression}")


@pytest.mark.parametrize("compression", [None, "snappy", "deflate"])
def test_tls_round_trip(nsqd_factory, certs, compression):
    cert, key, ca = certs
    nsqd = nsqd_factory(tls_cert=cert, tls_key=key)
    options = {compression: True} if compression else {}
    producer, consumer = run(pub_sub_round_trip(
        nsqd, f"conn_tls_{compression}", tls_v1=True, tls_options={"ca_certs": ca}, **options))
    assert consumer._protocol.compression == compression
    wait_channel_drained(nsqd, f"conn_tls_{compression}")


def test_tls_untrusted_certificate_is_refused(nsqd_factory, certs, tmp_path):
    cert, key, _ = certs
    nsqd = nsqd_factory(tls_cert=cert, tls_key=key)
    other_ca = str(tmp_path / "other.pem")
    trustme.CA().cert_pem.write_to_path(other_ca)

    async def main():
        conn = AsyncConn(nsqd.host, nsqd.tcp_port, tls_v1=True, tls_options={"ca_certs": other_ca})
        with pytest.raises(TLSHandshakeError):
            await conn.wait_ready(3)
    run(main())


def test_tls_required_without_tls_is_refused(nsqd_factory, certs):
    cert, key, _ = certs
    nsqd = nsqd_factory(tls_cert=cert, tls_key=key, tls_required="tcp-https")

    async def main():
        conn = AsyncConn(nsqd.host, nsqd.tcp_port)
        await conn.wait_ready(3)  # IDENTIFY is allowed before TLS
        with pytest.raises(NSQError) as info:
            await conn.publish("conn_tls_required", b"plaintext")
        assert info.value.code == "E_INVALID"
    run(main())


@pytest.fixture
def auth_server():
    server = AuthServer(secret="letmein")
    yield server
    server.close()


def test_auth_round_trip_and_failure(nsqd_factory, auth_server):
    nsqd = nsqd_factory(auth_http_address=auth_server.address)

    async def main():
        bad = AsyncConn(nsqd.host, nsqd.tcp_port, auth_secret="wrong")
        with pytest.raises(NSQError) as info:
            await bad.wait_ready(3)
        assert info.value.code in ("E_AUTH_FAILED", "E_AUTH_ERROR")
        assert "wrong" not in str(info.value)
        good = AsyncConn(nsqd.host, nsqd.tcp_port, auth_secret="letmein")
        seen = []
        good.on("auth_response", lambda conn, data: seen.append(data))
        await good.wait_ready(3)
        assert seen and seen[0]["identity"] == "tester"
        good.close()
        await pub_sub_round_trip(nsqd, "conn_auth", count=3, auth_secret="letmein")
    run(main())
