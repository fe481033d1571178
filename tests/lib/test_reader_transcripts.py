"""Reader against the scripted fake nsqd: exact command transcripts (go-nsq's mock_test idea)."""

import asyncio
import logging

from fake_nsqd import FakeNSQD, default_handler
from reader_transcript_helpers import FAST, mid, peer_closed, reader_for, run, settle

import nsqcli.lib as nsq


def test_handshake_share_fin_and_graceful_close():
    async def main():
        async with FakeNSQD() as fake:
            bodies = []
            reader = reader_for(fake, lambda m: bodies.append(m.body) or True, max_in_flight=5)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            peer.send_messages([b"a", b"b", b"c"])
            await fake.wait_for("FIN", 3)
            await reader.close()
            await peer_closed(peer)
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 5",
                                       f"FIN {mid(0)}", f"FIN {mid(1)}", f"FIN {mid(2)}",
                                       "RDY 0", "CLS"]
            assert bodies == [b"a", b"b", b"c"]
            assert reader.conns == {}

    run(main())


def test_neutral_requeue_and_handler_exception(caplog):
    def handler(message):
        if message.body == b"neutral":
            message.requeue(delay=2, backoff=False)
            return None
        raise RuntimeError("boom")

    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, handler, max_in_flight=2)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            peer.send_message(b"neutral")
            await fake.wait_for("REQ")
            await settle()
            assert fake.transcript[-1] == f"REQ {mid(0)} 2000"  # no RDY 0: neutral
            peer.send_message(b"raises")
            await fake.wait_for("RDY 0")
            assert fake.transcript[-2:] == [f"REQ {mid(1)} 90000", "RDY 0"]
            assert "boom" in caplog.text
            await reader.close()

    with caplog.at_level(logging.ERROR):
        run(main())


def test_handler_returning_none_without_answer_is_requeued(caplog):
    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, lambda m: None, max_in_flight=1)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            peer.send_message(b"x")
            await fake.wait_for("REQ")
            await reader.close()

    with caplog.at_level(logging.ERROR):
        run(main())
    assert "returned None" in caplog.text


def test_giving_up_after_max_tries():
    class Counting(nsq.Reader):
        given_up = []

        def giving_up(self, message):
            self.given_up.append(message.attempts)

    async def main():
        async with FakeNSQD() as fake:
            handled = []
            reader = Counting("t", "c", lambda m: handled.append(m) or True,
                              nsqd_tcp_addresses=fake.address, max_tries=3, **FAST)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            peer.send_message(b"old", attempts=4)
            peer.send_message(b"ok", attempts=3)
            await fake.wait_for("FIN", 2)
            assert Counting.given_up == [4]
            assert [m.body for m in handled] == [b"ok"]
            await reader.close()

    run(main())


def test_unlimited_tries_and_validate_message_hook():
    class Picky(nsq.Reader):
        def preprocess_message(self, message):
            return message.body.decode()

        def validate_message(self, text):
            return text != "skip"

    async def main():
        async with FakeNSQD() as fake:
            handled = []
            reader = Picky("t", "c", lambda m: handled.append(m.body) or True,
                           nsqd_tcp_addresses=fake.address, max_tries=0, **FAST)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            peer.send_message(b"skip")
            peer.send_message(b"many", attempts=1000)
            await fake.wait_for("FIN", 2)
            assert handled == [b"many"]
            await reader.close()

    run(main())


def test_coroutine_and_async_handlers():
    async def handler(message):
        await asyncio.sleep(0.01)
        if message.body == b"explode":
            raise ValueError("async boom")
        return message.body == b"good"

    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, handler, max_in_flight=3)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            peer.send_messages([b"good", b"bad", b"explode"])
            await fake.wait_for("REQ", 2)
            await fake.wait_for("FIN")
            answers = [line for line in fake.transcript if line.split()[0] in ("FIN", "REQ")]
            assert sorted(answers) == sorted([f"FIN {mid(0)}", f"REQ {mid(1)} 90000", f"REQ {mid(2)} 90000"])
            await reader.close()

    run(main())


def test_enable_async_answers_later_and_close_waits_for_it():
    async def main():
        async with FakeNSQD() as fake:
            held = []

            def handler(message):
                message.enable_async()
                held.append(message)

            reader = reader_for(fake, handler, max_in_flight=2)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            peer.send_messages([b"1", b"2"])
            await fake.wait_until(lambda: len(held) == 2)
            closing = asyncio.ensure_future(reader.close())
            await fake.wait_for("CLS")
            assert fake.transcript[-2:] == ["RDY 0", "CLS"]
            await settle()
            assert not closing.done()  # still waiting for the two in-flight messages
            held[0].finish()
            held[1].requeue(backoff=False)
            await closing
            await peer_closed(peer)
            assert fake.transcript[-2:] == [f"FIN {mid(0)}", f"REQ {mid(1)} 90000"]

    run(main())


def test_close_gives_up_waiting_after_close_timeout(caplog):
    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, lambda m: m.enable_async(), max_in_flight=1, close_timeout=0.2)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            peer.send_message(b"never answered")
            # delivered: the drain below has a message to wait for
            await fake.wait_until(lambda: [c.in_flight for c in reader.conns.values()] == [1])
            started = asyncio.get_running_loop().time()
            await reader.close()
            assert 0.15 < asyncio.get_running_loop().time() - started < 2
            await peer_closed(peer)

    with caplog.at_level(logging.WARNING):
        run(main())
    assert "still unanswered" in caplog.text


def test_configured_nsqd_reconnects_after_the_connection_drops():
    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, lambda m: True, max_in_flight=3)
            await fake.wait_for("RDY")
            fake.peers[0].close()
            await fake.wait_for("RDY 3", 2, timeout=3)
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 3"] * 2
            assert len(fake.peers) == 2
            await reader.close()
            n_peers = len(fake.peers)
            await asyncio.sleep(0.3)
            assert len(fake.peers) == n_peers  # nothing reconnects after close()

    run(main())


def test_async_with_and_close_without_await():
    async def main():
        async with FakeNSQD() as fake:
            async with reader_for(fake, lambda m: True) as reader:
                await fake.wait_for("RDY 1")
                assert len(reader.conns) == 1
            assert fake.transcript[-2:] == ["RDY 0", "CLS"]
            assert reader.conns == {}
            await peer_closed(fake.peers[0])
            second = reader_for(fake, lambda m: True)
            await fake.wait_for("RDY 1", 2)
            second.close()  # pynsq style: not awaited
            await peer_closed(fake.peers[1])

    run(main())


def test_closed_readers_leave_the_registry():
    from nsqcli.lib import registry

    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, lambda m: True)
            assert reader in registry.live_clients()
            await fake.wait_for("RDY")
            await reader.close()
            assert reader not in registry.live_clients()

    run(main())


def test_heartbeat_hook_and_nop():
    class Watching(nsq.Reader):
        beats = []

        def heartbeat(self, conn):
            self.beats.append(conn.id)

    async def main():
        async with FakeNSQD() as fake:
            reader = Watching("t", "c", lambda m: True, nsqd_tcp_addresses=fake.address, **FAST)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            peer.send_heartbeat()
            await fake.wait_for("NOP")
            assert Watching.beats == [fake.address]
            await reader.close()

    run(main())


def test_sub_failure_is_logged_and_retried_with_growing_delays(caplog):
    arrivals = []

    async def timed(peer):
        arrivals.append(asyncio.get_running_loop().time())
        await default_handler(peer)

    async def main():
        async with FakeNSQD(timed, responses={"SUB": b"E_SUB_FAILED SUB failed because of reasons"}) as fake:
            reader = reader_for(fake, lambda m: True)
            await fake.wait_until(lambda: len(fake.peers) >= 4, timeout=5)
            await reader.close()

    with caplog.at_level(logging.ERROR, logger="nsqcli.lib.reader"):
        run(main())
    assert "E_SUB_FAILED" in caplog.text
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # reconnect delays 0.05, 0.1, 0.2 s (+/- 25 % jitter): the third gap is clearly the longest
    assert gaps[2] > gaps[0] and gaps[2] >= 0.14


def test_ipv6_nsqd_address():
    async def main():
        async with FakeNSQD(host="::1") as fake:
            reader = nsq.Reader("t", "c", lambda m: True, nsqd_tcp_addresses=f"[::1]:{fake.port}", **FAST)
            await fake.wait_for("RDY 1")
            assert list(reader.conns) == [f"[::1]:{fake.port}"]
            await reader.close()

    run(main())


def test_close_timeout_cancels_coroutine_handlers_and_requeues_their_messages():
    started = []

    async def slow(message):
        started.append(message)
        await asyncio.sleep(60)
        return True

    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, slow, max_in_flight=1, close_timeout=0.1)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            peer.send_message(b"slow")
            await fake.wait_until(lambda: started)
            await reader.close()
            await peer_closed(peer)
            assert fake.transcript[-3:] == ["RDY 0", "CLS", f"REQ {mid(0)} 90000"]

    run(main())
