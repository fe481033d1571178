"""Reader transcripts (scripted fake nsqds) for production events: a pause during the backoff
probe, RDY with fewer than one per nsqd, and answers for messages of a lost nsqd."""

import asyncio

import pytest
from fake_nsqd import FakeNSQD
from reader_transcript_helpers import FAST, mid, reader_for, run, switchable_reader


def rdy_lines(fake):
    return [line for line in fake.transcript if line.startswith("RDY")]


def test_pause_and_resume_during_the_backoff_probe_tests_the_waters_again():
    async def main():
        async with FakeNSQD() as fake:
            results = [False, True]
            reader = reader_for(fake, lambda m: results.pop(0), max_in_flight=3)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY 3")
            peer.send_message(b"fails")
            await fake.wait_for("RDY 1")  # the window ended: one connection tests the waters
            reader.set_max_in_flight(0)
            await fake.wait_for("RDY 0", 2)
            reader.set_max_in_flight(3)
            await fake.wait_for("RDY 1", 2)  # the probe again, or no message ever comes
            peer.send_message(b"works")
            await fake.wait_for("RDY 3", 2)
            assert rdy_lines(fake) == ["RDY 3", "RDY 0", "RDY 1", "RDY 0", "RDY 1", "RDY 3"]
            assert not reader.backoff_window.in_backoff
            await reader.close()

    run(main())


def test_the_deprecated_disabled_hook_during_the_backoff_probe():
    Switchable = switchable_reader(off=False)

    async def main():
        async with FakeNSQD() as fake:
            results = [False, True]
            with pytest.warns(DeprecationWarning):
                reader = Switchable("t", "c", lambda m: results.pop(0), nsqd_tcp_addresses=fake.address,
                                    max_in_flight=2, **FAST)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY 2")
            peer.send_message(b"fails")
            await fake.wait_for("RDY 1")
            Switchable.off = True
            await fake.wait_for("RDY 0", 2)  # the next periodic check pauses
            Switchable.off = False
            await fake.wait_for("RDY 1", 2)  # and the one after tests the waters again
            peer.send_message(b"works")
            await fake.wait_for("RDY 2", 2)
            await reader.close()

    run(main())


def test_rdy_held_too_long_by_a_busy_nsqd_moves_to_a_waiting_one_in_the_same_round():
    async def main():
        async with FakeNSQD() as one, FakeNSQD() as two:
            held = []

            def handler(message):  # the message stays in flight: its nsqd is busy
                message.enable_async()
                held.append(message)

            reader = reader_for(one, handler, max_in_flight=1, low_rdy_timeout=0.3)
            await one.wait_for("RDY 1")
            reader.connect_to_nsqd(two.host, two.port)
            await two.wait_for("SUB")
            one.peers[0].send_message(b"busy")
            await one.wait_until(lambda: held)
            # after low_rdy_timeout the RDY moves to the waiting nsqd at once (pynsq's algorithm
            # took it away and gave it to nobody while the message stayed in flight)
            await two.wait_for("RDY 1", timeout=3)
            assert rdy_lines(one) == ["RDY 1", "RDY 0"]
            assert rdy_lines(two) == ["RDY 1"]
            assert reader.total_rdy == 1
            held[0].finish()
            await reader.close()

    run(main())


def test_requeues_for_messages_of_a_lost_nsqd_do_not_pause_the_others():
    async def main():
        async with FakeNSQD() as one, FakeNSQD() as two:
            held = []

            def handler(message):
                if message.body.startswith(b"lost"):
                    message.enable_async()
                    held.append(message)
                    return None
                return True

            reader = reader_for(one, handler, max_in_flight=4)
            await one.wait_for("RDY 4")
            reader.connect_to_nsqd(two.host, two.port)
            await two.wait_for("RDY 2")
            two.peers[0].send_messages([b"lost-1", b"lost-2", b"lost-3"])
            await two.wait_until(lambda: len(held) == 3)
            await two.stop()  # nsqd two goes away with three messages in flight
            await one.wait_for("RDY 4", 2)
            for message in held:
                message.requeue()  # a handler failure, answered after the connection died
            assert not reader.backoff_window.in_backoff
            one.peers[0].send_message(b"fine", msg_id=b"%016x" % 7)
            await one.wait_for("FIN")  # the RDY 0 of a backoff would have come before it
            assert rdy_lines(one) == ["RDY 4", "RDY 2", "RDY 4"]
            await reader.close()

    run(main())


def test_a_fin_for_a_message_of_a_lost_nsqd_does_not_end_a_backoff():
    async def main():
        async with FakeNSQD() as one, FakeNSQD() as two:
            held = []

            def handler(message):
                if message.body == b"lost":
                    message.enable_async()
                    held.append(message)
                    return None
                return False

            reader = reader_for(one, handler, max_in_flight=4)
            await one.wait_for("RDY 4")
            reader.connect_to_nsqd(two.host, two.port)
            await two.wait_for("RDY 2")
            two.peers[0].send_message(b"lost")
            await two.wait_until(lambda: held)
            one.peers[0].send_message(b"fails")
            await one.wait_for(f"REQ {mid(0)}")  # backing off: RDY 0 on both
            await two.wait_for("RDY 0")
            await two.stop()  # nsqd two goes away, its message in flight
            await one.wait_for("RDY 1")  # the window ended: testing the waters
            held[0].finish()  # its connection is gone: not a success
            assert reader.backoff_strategy.level == 1 and reader.backoff_window.in_backoff
            await asyncio.sleep(0)
            assert rdy_lines(one)[-1] == "RDY 1"
            await reader.close()

    run(main())
