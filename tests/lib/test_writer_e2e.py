"""Writer end to end through the `nsqd` fixture (embedded nsqd, or a real one via NSQCLI_TEST_NSQD)."""

from __future__ import annotations

import asyncio

import pytest

import nsqcli.lib as nsq
from nsqcli.lib.errors import ConnectionClosedError, NSQError, SendError

pytestmark = pytest.mark.timeout(60)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 45))


def message_count(nsqd, topic: str) -> int:
    entry = nsqd.topic_stats(topic)
    return 0 if entry is None else entry["message_count"]


def test_pub_mpub_dpub_reach_nsqd(nsqd):
    async def main():
        async with nsq.Writer([nsqd.tcp_address]) as writer:
            results = await asyncio.gather(
                writer.pub("writer_e2e", b"one"),
                writer.mpub("writer_e2e", [b"two", b"three", b"four"]),
                writer.dpub("writer_e2e", 60_000, b"later"),
                *(writer.pub("writer_e2e", b"m%d" % i) for i in range(100)),
            )
            assert set(results) == {b"OK"}
    run(main())
    assert message_count(nsqd, "writer_e2e") == 105


def test_nsqd_rejections_fail_the_publish_with_the_error_code(nsqd_factory):
    nsqd = nsqd_factory(max_msg_size=100)

    async def main():
        writer = nsq.Writer(nsqd.tcp_address, reconnect_interval=0.1)
        got = []
        with pytest.raises(NSQError) as info:
            await writer.pub("too_big", b"x" * 200, lambda conn, data: got.append(data))
        assert info.value.code == "E_BAD_MESSAGE"
        await asyncio.sleep(0)
        assert isinstance(got[0], NSQError)
        # nsqd closed that connection; the Writer reconnects and carries on
        assert await writer.pub("too_big", b"small") == b"OK"
        with pytest.raises(NSQError) as info:
            await writer.dpub("too_big", 10 * 3600 * 1000, b"x")  # beyond --max-req-timeout
        assert info.value.code == "E_INVALID"
        await writer.close()
    run(main())
    assert message_count(nsqd, "too_big") == 1


def test_writer_outlives_an_nsqd_restart(nsqd):
    async def main():
        writer = nsq.Writer(nsqd.tcp_address, reconnect_interval=0.5, connect_timeout=15)
        assert await writer.pub("restart", b"before") == b"OK"
        await asyncio.to_thread(nsqd.stop)
        # the connection dies with the broker; a publish now waits for the reconnect
        await asyncio.sleep(0.2)
        pending = writer.pub("restart", b"during")
        await asyncio.sleep(0.3)
        await asyncio.to_thread(nsqd.start)
        assert await pending == b"OK"
        assert await writer.pub("restart", b"after") == b"OK"
        await writer.close()
    run(main())
    # an embedded nsqd keeps nothing across restarts (memory only); a real one persists to disk
    assert message_count(nsqd, "restart") >= 2


def test_publishes_in_flight_when_nsqd_dies_fail_never_report_ok(nsqd):
    async def main():
        writer = nsq.Writer(nsqd.tcp_address, reconnect_interval=5, connect_timeout=0.5)
        await writer.pub("dies", b"warm up")
        futures = [writer.pub("dies", b"x" * 1000) for _ in range(2000)]
        await asyncio.to_thread(nsqd.stop)
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        ok = sum(1 for o in outcomes if o == b"OK")
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        assert ok + len(failed) == 2000
        assert all(isinstance(o, (ConnectionClosedError, SendError)) for o in failed)
        await writer.close()

    run(main())


@pytest.mark.parametrize("options", [{"snappy": True}, {"deflate": True, "deflate_level": 3}],
                         ids=["snappy", "deflate"])
def test_compressed_connections_publish(nsqd, options):
    topic = "compressed_" + next(iter(options))

    async def main():
        async with nsq.Writer(nsqd.tcp_address, **options) as writer:
            results = await asyncio.gather(*(writer.pub(topic, b"%d" % i * 50) for i in range(300)),
                                           writer.mpub(topic, (b"gen %d" % i for i in range(10))))
            assert set(results) == {b"OK"}
            conn = next(iter(writer.conns.values()))
            assert conn.identify_response.raw[next(iter(options))] is True
    run(main())
    assert message_count(nsqd, topic) == 310


def test_module_level_writer_used_inside_a_later_asyncio_run(nsqd):
    """The common script shape: the Writer is made at import time, the app runs asyncio.run()."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import asyncio
        import nsqcli.lib as nsq

        writer = nsq.Writer({nsqd.tcp_address!r})

        async def main():
            print(await writer.pub("outside_loop", b"x"))
            print(await writer.mpub("outside_loop", [b"y", b"z"]))
            await writer.close()

        asyncio.run(main())
    """)
    result = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", script],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["b'OK'", "b'OK'"]
    assert "Traceback" not in result.stderr and "never retrieved" not in result.stderr
    assert message_count(nsqd, "outside_loop") == 3


def test_tls_with_snappy_publishes(nsqd_factory, tls_files):
    cert, key, ca, _ = tls_files
    nsqd = nsqd_factory(tls_cert=cert, tls_key=key, tls_required="tcp-https")

    async def main():
        async with nsq.Writer(nsqd.tcp_address, tls_v1=True, tls_options={"ca_certs": ca},
                              snappy=True) as writer:
            results = await asyncio.gather(*(writer.pub("tls_pub", b"secret %d" % i) for i in range(50)))
            assert set(results) == {b"OK"}
    run(main())
    assert message_count(nsqd, "tls_pub") == 50


def test_untrusted_certificate_fails_publishes_with_the_tls_error_as_cause(nsqd_factory, tls_files):
    cert, key, _, other_ca = tls_files
    nsqd = nsqd_factory(tls_cert=cert, tls_key=key)

    async def main():
        writer = nsq.Writer(nsqd.tcp_address, tls_v1=True, tls_options={"ca_certs": other_ca},
                            connect_timeout=0.5, reconnect_interval=0.1)
        with pytest.raises(SendError) as info:
            await writer.pub("tls_refused", b"x")
        assert "TLS" in str(info.value.__cause__)  # the handshake failure, not a bare timeout
        await writer.close()
    run(main())
    assert message_count(nsqd, "tls_refused") == 0
