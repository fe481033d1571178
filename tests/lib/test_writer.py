"""Writer against the scripted fake nsqd: exact PUB/MPUB/DPUB bytes, callbacks, errors, reconnects."""

from __future__ import annotations

import asyncio
import struct

import pytest
from fake_nsqd import FakeNSQD, FakePeer

import nsqcli.lib as nsq
from nsqcli.broker.daemons import free_port
from nsqcli.lib import registry
from nsqcli.lib.errors import ConnectionClosedError, NSQError, SendError
from nsqcli.lib.writer_links import new_reconnect_backoff

pytestmark = pytest.mark.timeout(30)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


async def until(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)


def bodies(peer: FakePeer, name: bytes) -> list:
    return [(c.params, c.body) for c in peer.commands if c.name == name]


# ---- publishing ----------------------------------------------------------------------------


def test_pub_mpub_dpub_send_exact_commands_and_resolve_on_ok():
    async def main():
        async with FakeNSQD() as fake:
            calls = []
            writer = nsq.Writer([fake.address])
            # published before the connection exists: waits for it instead of failing
            first = writer.pub("t1", b"hello", lambda conn, data: calls.append(("pub", data)))
            assert await first == b"OK"
            assert await writer.mpub("t1", [b"a", "b\u00e9"], lambda c, d: calls.append(("mpub", d))) == b"OK"
            assert await writer.dpub("t1", 1500, b"later", lambda c, d: calls.append(("dpub", d))) == b"OK"
            assert await writer.mpub("t1", b"single") == b"OK"  # a lone body is wrapped, as pynsq
            await writer.close()
            peer = fake.peers[0]
            assert peer.transcript == ["IDENTIFY", "PUB t1", "MPUB t1", "DPUB t1 1500", "MPUB t1"]
            raw = [c.encode() for c in peer.commands[1:]]
            assert raw[0] == b"PUB t1\n" + struct.pack(">l", 5) + b"hello"
            mpub_payload = struct.pack(">l", 2) + struct.pack(">l", 1) + b"a" + struct.pack(">l", 3) + "b\u00e9".encode()
            assert raw[1] == b"MPUB t1\n" + struct.pack(">l", len(mpub_payload)) + mpub_payload
            assert raw[2] == b"DPUB t1 1500\n" + struct.pack(">l", 5) + b"later"
            assert calls == [("pub", b"OK"), ("mpub", b"OK"), ("dpub", b"OK")]
    run(main())


def test_mpub_wraps_a_lone_bytearray_or_memoryview_body_as_pynsq():
    # pynsq wraps any bytes type (bytes, bytearray, memoryview); iterating one would send ints
    async def main():
        async with FakeNSQD() as fake:
            async with nsq.Writer([fake.address]) as writer:
                assert await writer.mpub("t1", bytearray(b"ba")) == b"OK"
                assert await writer.mpub("t1", memoryview(b"mv")) == b"OK"
            payloads = [c.body for c in fake.peers[0].commands if c.name == b"MPUB"]
            assert payloads == [struct.pack(">ll", 1, 2) + body for body in (b"ba", b"mv")]
    run(main())


def test_callbacks_get_conn_and_data_positionally_in_order():
    async def main():
        async with FakeNSQD() as fake:
            writer = nsq.Writer(fake.address)
            seen = []

            def finish_pub(conn, data, index):  # the docs' functools.partial style
                seen.append((conn.id if conn else None, data, index))

            import functools
            futures = [writer.pub("t", b"m%d" % i, functools.partial(finish_pub, index=i)) for i in range(20)]
            await asyncio.gather(*futures)
            await asyncio.sleep(0)
            assert [s[2] for s in seen] == list(range(20))
            assert {s[1] for s in seen} == {b"OK"}
            assert {s[0] for s in seen} == {f"127.0.0.1:{fake.port}"}
            await writer.close()
    run(main())


def test_nsqd_error_fails_the_publish_and_its_callback_and_then_the_pending_ones():
    async def main():
        async with FakeNSQD(responses={"PUB": b"E_BAD_MESSAGE PUB message too big 2000000 > 1048576"}) as fake:
            writer = nsq.Writer(fake.address, reconnect_interval=0.05)
            got = []
            first = writer.pub("t", b"x" * 10, lambda conn, data: got.append(data))
            second = writer.pub("t", b"y", lambda conn, data: got.append(data))
            with pytest.raises(NSQError) as info:
                await first
            assert info.value.code == "E_BAD_MESSAGE"
            with pytest.raises(ConnectionClosedError):  # nsqd closed the connection after E_*
                await second
            await asyncio.sleep(0.01)
            assert isinstance(got[0], NSQError) and got[0].code == "E_BAD_MESSAGE"
            assert isinstance(got[1], ConnectionClosedError)
            await writer.close()
    run(main())


def test_connection_lost_with_pending_publishes_fails_all_of_them_with_the_root_cause():
    async def swallow_then_close(peer: FakePeer) -> None:
        await peer.handshake()
        for _ in range(3):
            await peer.expect("PUB")
        peer.close()

    async def main():
        async with FakeNSQD(swallow_then_close) as fake:
            writer = nsq.Writer(fake.address, reconnect_interval=5)
            results = []
            futures = [writer.pub("t", b"%d" % i, lambda c, d: results.append(d)) for i in range(3)]
            outcomes = await asyncio.gather(*futures, return_exceptions=True)
            assert all(isinstance(o, ConnectionClosedError) for o in outcomes), outcomes
            # the root cause (nsqd hung up) is attached, not just "closed"
            assert all("closed the connection" in str(o.__cause__) for o in outcomes), outcomes
            await asyncio.sleep(0)
            assert len(results) == 3 and all(isinstance(r, ConnectionClosedError) for r in results)
            await writer.close()
    run(main())


def test_reconnects_after_the_connection_dies_and_publishes_again():
    async def close_first(peer: FakePeer) -> None:
        await peer.handshake()
        if len(peer.server.peers) == 1:
            peer.close()
            return
        await peer.serve()

    async def main():
        async with FakeNSQD(close_first) as fake:
            writer = nsq.Writer(fake.address, reconnect_interval=0.2)
            await fake.wait_peer(1)  # the second connection: reconnected after ~0.1 s
            assert await writer.pub("t", b"after") == b"OK"
            assert fake.peers[1].transcript == ["IDENTIFY", "PUB t"]
            await writer.close()
    run(main())


def test_publish_without_any_reachable_nsqd_fails_after_connect_timeout_with_the_cause():
    async def main():
        writer = nsq.Writer(f"127.0.0.1:{free_port()}", connect_timeout=0.3, reconnect_interval=0.05)
        got = []
        start = asyncio.get_running_loop().time()
        with pytest.raises(SendError) as info:
            await writer.pub("t", b"x", lambda conn, data: got.append((conn, data)))
        assert 0.25 <= asyncio.get_running_loop().time() - start < 2
        assert "no connection to nsqd" in str(info.value)
        assert isinstance(info.value.__cause__, OSError)
        await asyncio.sleep(0)
        assert got[0][0] is None and isinstance(got[0][1], SendError)
        await writer.close()
    run(main())


def test_round_robin_over_connected_nsqds():
    async def main():
        async with FakeNSQD() as a, FakeNSQD() as b:
            writer = nsq.Writer([a.address, b.address])
            await until(lambda: len(writer.conns) == 2)
            await asyncio.gather(*(writer.pub("t", b"%d" % i) for i in range(10)))
            assert a.transcript.count("PUB t") == 5 and b.transcript.count("PUB t") == 5
            await writer.close()
    run(main())


def test_close_waits_for_outstanding_acks_then_closes_and_refuses_new_publishes():
    async def slow_ok(peer: FakePeer) -> None:
        await peer.handshake()
        for _ in range(2):
            await peer.expect("PUB")
        await asyncio.sleep(0.2)
        peer.send_response(b"OK")
        peer.send_response(b"OK")
        await peer.wait_closed()

    async def main():
        async with FakeNSQD(slow_ok) as fake:
            writer = nsq.Writer(fake.address)
            futures = [writer.pub("t", b"1"), writer.pub("t", b"2")]
            await fake.wait_for("PUB", 2)
            assert writer in registry.live_clients()
            await writer.close()
            assert [f.result() for f in futures] == [b"OK", b"OK"]
            assert writer not in registry.live_clients()
            await until(lambda: fake.peers[0].closed)
            with pytest.raises(SendError, match="closed"):
                await writer.pub("t", b"late")
            assert writer.close() is writer.close()  # idempotent
    run(main())


def test_close_is_bounded_when_nsqd_never_answers():
    async def never_answer(peer: FakePeer) -> None:
        await peer.handshake()
        await peer.expect("PUB")
        await asyncio.sleep(10)

    async def main():
        async with FakeNSQD(never_answer) as fake:
            writer = nsq.Writer(fake.address, close_timeout=0.2)
            future = writer.pub("t", b"x")
            await fake.wait_for("PUB")
            start = asyncio.get_running_loop().time()
            await writer.close()
            assert asyncio.get_running_loop().time() - start < 1.5
            with pytest.raises(ConnectionClosedError):
                await future
    run(main())


def test_async_with_and_heartbeat_hook():
    async def heartbeat_then_serve(peer: FakePeer) -> None:
        await peer.handshake()
        peer.send_heartbeat()
        await peer.serve()

    class MyWriter(nsq.Writer):
        beats = 0

        def heartbeat(self, conn):
            MyWriter.beats += 1

    async def main():
        async with FakeNSQD(heartbeat_then_serve) as fake:
            async with MyWriter(fake.address) as writer:
                await fake.wait_for("NOP")
                assert await writer.pub("t", b"x") == b"OK"
            assert MyWriter.beats == 1
            assert writer.conns == {}
    run(main())


# ---- validation ----------------------------------------------------------------------------


def test_bad_names_and_bodies_raise_before_anything_is_sent():
    async def main():
        async with FakeNSQD() as fake:
            writer = nsq.Writer(fake.address)
            for bad in ("", "has space", "x" * 65, "bad/topic", None):
                with pytest.raises((ValueError, TypeError)):
                    writer.pub(bad, b"x")
            with pytest.raises(ValueError, match="empty"):
                writer.pub("t", b"")  # before the connection is up
            with pytest.raises(ValueError):
                writer.mpub("t", [])
            with pytest.raises(ValueError):
                writer.dpub("t", -1, b"x")
            await writer.pub("t", b"ok")
            with pytest.raises(ValueError, match="empty"):
                writer.pub("t", b"")  # and after
            with pytest.raises(ValueError):
                writer.mpub("t", [b"a", b""])
            await writer.close()
            assert fake.transcript == ["IDENTIFY", "PUB t"]
    run(main())


def test_constructor_validation():
    async def main():
        with pytest.raises(TypeError, match="bogus"):
            nsq.Writer("127.0.0.1:4150", bogus=1)
        with pytest.raises(ValueError):
            nsq.Writer([])
        with pytest.raises(ValueError):
            nsq.Writer("nohostport")
        with pytest.raises(ValueError):
            nsq.Writer("127.0.0.1:4150", reconnect_interval=0)
        with pytest.raises(TypeError):
            nsq.Writer("127.0.0.1:4150", name=5)
        writer = nsq.Writer(["127.0.0.1:4150", "[::1]:4150"], heartbeat_interval=5, connect_timeout=0.1)
        assert writer.name == "127.0.0.1:4150"
        assert writer.nsqd_tcp_addresses == ["127.0.0.1:4150", "[::1]:4150"]
        assert writer.reconnect_interval == 15.0
        await writer.close()
    run(main())


def test_reconnect_backoff_starts_fast_doubles_and_is_capped_by_reconnect_interval():
    import random

    backoff = new_reconnect_backoff(15.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(12)]
    assert 0.075 <= delays[0] <= 0.125
    for n, delay in enumerate(delays):
        assert min(15.0, 0.1 * 2**n) * 0.75 <= delay <= min(15.0, 0.1 * 2**n * 1.25)
    assert delays[-1] <= 15.0 and delays[-1] >= 15.0 * 0.75
    backoff.reset()
    assert backoff.next_delay() <= 0.125
    assert new_reconnect_backoff(0.05).next_delay() <= 0.05


def test_closed_right_after_publishing_still_delivers_what_was_queued():
    async def main():
        async with FakeNSQD() as fake:
            writer = nsq.Writer(fake.address)
            futures = [writer.pub("t", b"a"), writer.mpub("t", [b"b", b"c"])]
            await writer.close()  # before the connection was even attempted
            assert [f.result() for f in futures] == [b"OK", b"OK"]
            assert fake.transcript == ["IDENTIFY", "PUB t", "MPUB t"]
    run(main())


def test_only_connected_nsqds_get_publishes_and_connect_to_nsqd_adds_one():
    async def main():
        async with FakeNSQD() as a, FakeNSQD() as b:
            dead = f"127.0.0.1:{free_port()}"
            writer = nsq.Writer([dead, a.address], reconnect_interval=0.05)
            await asyncio.gather(*(writer.pub("t", b"%d" % i) for i in range(6)))
            assert a.transcript.count("PUB t") == 6  # never routed to the unreachable one
            writer.connect_to_nsqd("127.0.0.1", b.port)
            writer.connect_to_nsqd("127.0.0.1", b.port)  # known: ignored
            await until(lambda: len(writer.conns) == 2)
            assert writer.nsqd_tcp_addresses == [dead, a.address, b.address]
            await asyncio.gather(*(writer.pub("t", b"%d" % i) for i in range(6)))
            assert b.transcript.count("PUB t") == 3
            await writer.close()
    run(main())


def test_no_reconnect_after_close():
    async def main():
        async with FakeNSQD() as fake:
            writer = nsq.Writer(fake.address, reconnect_interval=0.05)
            await writer.pub("t", b"x")
            await writer.close()
            await until(lambda: fake.peers[0].closed)
            await asyncio.sleep(0.3)  # several reconnect intervals
            assert len(fake.peers) == 1
            assert writer.conns == {}
    run(main())
