"""Reader RDY and backoff against the scripted fake nsqd: shares, caps, probes, pauses, redistribution
(exact command transcripts)."""

import asyncio

import pytest
from fake_nsqd import FakeNSQD
from reader_transcript_helpers import FAST, mid, reader_for, run, settle, switchable_reader


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
