"""Reader against the scripted fake nsqd: exact command transcripts (go-nsq's mock_test idea)."""

import asyncio
import logging

import pytest
from fake_nsqd import FakeNSQD, default_handler, new_message_id

import nsqcli.lib as nsq

FAST = dict(backoff_multiplier=0.05, rdy_redistribute_interval=0.05, reconnect_interval=0.05,
            close_timeout=2.0)


def run(coro):
    asyncio.run(asyncio.wait_for(coro, 20))


def mid(n):
    return new_message_id(n).decode()


async def settle(seconds=0.05):
    await asyncio.sleep(seconds)


async def peer_closed(peer):
    """Until the fake saw the client close this connection (its serve loop records it)."""
    await peer.server.wait_until(lambda: peer.closed)


def reader_for(fake, handler, **kwargs):
    options = {**FAST, **kwargs}
    return nsq.Reader("t", "c", handler, nsqd_tcp_addresses=[fake.address], **options)


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


def test_rdy_is_split_between_nsqds_and_lowered_before_the_newcomer_gets_its_share():
    async def main():
        async with FakeNSQD() as one, FakeNSQD() as two:
            reader = reader_for(one, lambda m: True, max_in_flight=10)
            await one.wait_for("RDY")
            reader.connect_to_nsqd(two.host, two.port)
            await two.wait_for("RDY")
            await one.wait_for("RDY", 2)
            assert one.transcript == ["IDENTIFY", "SUB t c", "RDY 10", "RDY 5"]
            assert two.transcript == ["IDENTIFY", "SUB t c", "RDY 5"]
            assert reader.total_rdy == 10
            # messages on both: no RDY re-sent (already at the share)
            one.peers[0].send_message(b"x")
            two.peers[0].send_message(b"y")
            await one.wait_for("FIN")
            await two.wait_for("FIN")
            await settle()
            assert [line for line in one.transcript + two.transcript if line.startswith("RDY")] == [
                "RDY 10", "RDY 5", "RDY 5"]
            # one nsqd goes away: the other gets the whole budget
            two.peers[0].close()
            await one.wait_for("RDY 10", 2)
            await reader.close()

    run(main())


def test_max_rdy_count_caps_the_share():
    async def main():
        async with FakeNSQD(identify_response={"max_rdy_count": 3}) as fake:
            reader = reader_for(fake, lambda m: True, max_in_flight=100)
            await fake.wait_for("RDY")
            await settle()
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 3"]
            fake.peers[0].send_message(b"x")
            await fake.wait_for("FIN")
            await settle()
            assert fake.transcript[-1] == f"FIN {mid(0)}"
            await reader.close()

    run(main())


def test_backoff_rdy_0_then_probe_with_rdy_1_then_back_to_share():
    async def main():
        async with FakeNSQD() as fake:
            results = [False, True]
            reader = reader_for(fake, lambda m: results.pop(0), max_in_flight=5)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            peer.send_message(b"fails")
            await fake.wait_for("RDY 1")  # after the 0.1 s window
            peer.send_message(b"works")
            await fake.wait_for("RDY 5", 2)
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 5", f"REQ {mid(0)} 90000", "RDY 0",
                                       "RDY 1", f"FIN {mid(1)}", "RDY 5"]
            assert not reader.backoff_window.in_backoff
            await reader.close()

    run(main())


def test_one_result_counts_per_backoff_window():
    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, lambda m: False, max_in_flight=5, requeue_delay=0)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            peer.send_messages([b"1", b"2", b"3"])
            await fake.wait_for("REQ", 3)
            assert reader.backoff_strategy.level == 1  # three failures, one window
            await fake.wait_for("RDY 1")
            peer.send_message(b"4")
            await fake.wait_for("REQ", 4)
            assert reader.backoff_strategy.level == 2
            rdy = [line for line in fake.transcript if line.startswith("RDY")]
            assert rdy == ["RDY 5", "RDY 0", "RDY 1", "RDY 0"]
            assert fake.transcript[3:6] == [f"REQ {mid(0)} 0", "RDY 0", f"REQ {mid(1)} 0"]
            await reader.close()

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
            await settle()
            started = asyncio.get_running_loop().time()
            await reader.close()
            assert 0.15 < asyncio.get_running_loop().time() - started < 2
            await peer_closed(peer)

    with caplog.at_level(logging.WARNING):
        run(main())
    assert "still unanswered" in caplog.text


def test_pause_and_resume_with_set_max_in_flight():
    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, lambda m: True, max_in_flight=4)
            await fake.wait_for("RDY")
            reader.set_max_in_flight(0)
            await fake.wait_for("RDY 0")
            await asyncio.sleep(0.2)  # several redistribution ticks: stays paused
            reader.set_max_in_flight(7)
            await fake.wait_for("RDY 7")
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 4", "RDY 0", "RDY 7"]
            with pytest.raises(ValueError):
                reader.set_max_in_flight(-1)
            with pytest.raises(TypeError):
                reader.set_max_in_flight(2.5)
            await reader.close()

    run(main())


def test_redistribution_when_nsqds_outnumber_max_in_flight():
    async def main():
        async with FakeNSQD() as one, FakeNSQD() as two:
            reader = reader_for(one, lambda m: True, max_in_flight=1, low_rdy_idle_timeout=0.2)
            await one.wait_for("RDY 1")
            reader.connect_to_nsqd(two.host, two.port)
            # the idle first connection loses its RDY, the second gets it, and back again
            await two.wait_for("RDY 1", timeout=3)
            await one.wait_for("RDY 1", 2, timeout=3)
            lines = one.transcript + two.transcript
            assert all(line in ("IDENTIFY", "SUB t c", "RDY 0", "RDY 1") for line in lines)
            await reader.close()

    run(main())


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


def test_backoff_with_two_nsqds_probes_one_and_restores_both():
    async def main():
        async with FakeNSQD() as one, FakeNSQD() as two:
            results = [False, True]
            reader = reader_for(one, lambda m: results.pop(0), max_in_flight=10)
            await one.wait_for("RDY 10")
            reader.connect_to_nsqd(two.host, two.port)
            await two.wait_for("RDY 5")
            one.peers[0].send_message(b"fails")
            await one.wait_for("RDY 0")
            await two.wait_for("RDY 0")

            def probed():
                return [f for f in (one, two) if f.transcript[-1] == "RDY 1"]

            await one.wait_until(lambda: len(probed()) == 1)
            await asyncio.sleep(0.1)
            assert len(probed()) == 1  # only one nsqd tests the waters
            prober = probed()[0]
            prober.peers[0].send_message(b"works", msg_id=b"%016x" % 99)
            await one.wait_for("RDY 5", 2 if prober is one else 1)
            await two.wait_for("RDY 5", 2)
            assert one.transcript == ["IDENTIFY", "SUB t c", "RDY 10", "RDY 5", f"REQ {mid(0)} 90000",
                                      "RDY 0"] + (["RDY 1", f"FIN {mid(99)}"] if prober is one else []) + [
                                      "RDY 5"]
            await reader.close()

    run(main())


def test_pynsq_strategy_backs_off_with_its_curve():
    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, lambda m: False, max_in_flight=3, backoff_strategy="pynsq",
                                max_backoff_duration=1.0)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY 3")
            peer.send_message(b"x")
            await fake.wait_for("RDY 0")
            assert reader.backoff_window.window_length == pytest.approx(0.028)  # pynsq's curve, max 1 s
            await fake.wait_for("RDY 1")
            await reader.close()

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


def switchable_reader(off):
    """A Reader class whose deprecated ``disabled()`` hook returns its ``off`` attribute."""
    class Switchable(nsq.Reader):
        @classmethod
        def disabled(cls):
            return cls.off

    Switchable.off = off
    return Switchable


def test_deprecated_disabled_hook_holds_rdy_until_it_returns_false():
    Switchable = switchable_reader(off=True)

    async def main():
        async with FakeNSQD() as fake:
            with pytest.warns(DeprecationWarning):
                reader = Switchable("t", "c", lambda m: True, nsqd_tcp_addresses=fake.address,
                                    max_in_flight=4, **FAST)
            await fake.wait_for("SUB")
            await asyncio.sleep(0.2)
            assert fake.transcript == ["IDENTIFY", "SUB t c"]
            Switchable.off = False
            await fake.wait_for("RDY 4")  # the next periodic check hands out the share
            Switchable.off = True
            await fake.wait_for("RDY 0")
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


def test_set_max_in_flight_during_backoff_waits_for_the_backoff_to_end():
    async def main():
        async with FakeNSQD() as fake:
            results = [False, True]
            reader = reader_for(fake, lambda m: results.pop(0), max_in_flight=2)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY 2")
            peer.send_message(b"fails")
            await fake.wait_for("RDY 0")
            reader.set_max_in_flight(6)  # no RDY 6 while backing off
            await fake.wait_for("RDY 1")
            assert "RDY 6" not in fake.transcript
            peer.send_message(b"works")
            await fake.wait_for("RDY 6")
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
