"""Reader.messages() against the scripted fake nsqd: the exact commands the iterator sends.

RDY only while a stream is open; RDY 0 before the REQ of every buffered message when the last
stream closes (break, exception, cancellation, aclose, async with, the Reader's close); messages
handed out hold their share of RDY until answered; backoff and max_tries as with a handler.
"""

import asyncio

import pytest
from fake_nsqd import FakeNSQD
from polling import until
from reader_transcript_helpers import mid, reader_for, run

import nsqcli.lib as nsq


class Boom(Exception):
    pass


async def subscribed(fake):
    """The first peer, once the Reader's SUB reached it."""
    peer = await fake.wait_peer()
    await fake.wait_for("SUB")
    return peer


def send_on(fake, line, bodies, attempts=1):
    """In the background: once ``line`` (e.g. "RDY 5") arrived, the first peer sends ``bodies``
    in one write. Returns the task (await it to see a script error)."""
    async def send():
        await fake.wait_for(line)
        fake.peers[0].send_messages(bodies, attempts=attempts)
    return asyncio.ensure_future(send())


async def iterated(fake, max_in_flight, bodies=None):
    """A Reader on ``fake`` without a handler, subscribed; ``bodies`` are sent in one write as
    soon as RDY arrives (await the returned sender to see a script error)."""
    reader = reader_for(fake, None, max_in_flight=max_in_flight)
    await subscribed(fake)
    sender = send_on(fake, f"RDY {max_in_flight}", bodies) if bodies else None
    return reader, sender


async def buffered(reader, count):
    await until(lambda: len(reader._inbox.buffer) == count)


def test_no_rdy_before_a_stream_opens():
    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, None, max_in_flight=5)
            peer = await subscribed(fake)
            peer.send_heartbeat()  # its NOP answer: nothing was sent between SUB and it
            await fake.wait_for("NOP")
            stream = reader.messages()
            await fake.wait_for("RDY")
            assert fake.transcript == ["IDENTIFY", "SUB t c", "NOP", "RDY 5"]
            await stream.aclose()
            await fake.wait_for("RDY 0")
            await reader.close()

    run(main())


def test_a_handler_set_later_gets_rdy_then():
    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, None, max_in_flight=5)
            peer = await subscribed(fake)
            peer.send_heartbeat()
            await fake.wait_for("NOP")
            reader.set_message_handler(lambda message: True)
            await fake.wait_for("RDY")
            assert fake.transcript == ["IDENTIFY", "SUB t c", "NOP", "RDY 5"]
            with pytest.raises(RuntimeError, match="not both"):
                reader.messages()
            await reader.close()

    run(main())


def test_break_sends_rdy_0_then_requeues_exactly_the_buffered_messages():
    async def main():
        async with FakeNSQD() as fake:
            reader, sender = await iterated(fake, 5, [b"a", b"b", b"c", b"d", b"e"])
            got = []
            async for message in reader.messages():
                if not got:
                    await buffered(reader, 4)
                got.append(message.body)
                await message.fin()
                if len(got) == 2:
                    break
            await sender
            await fake.wait_for("REQ", 3)
            assert got == [b"a", b"b"]
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 5",
                                       f"FIN {mid(0)}", f"FIN {mid(1)}", "RDY 0",
                                       f"REQ {mid(2)} 0", f"REQ {mid(3)} 0", f"REQ {mid(4)} 0"]
            assert reader._inbox.streams == 0 and not reader._inbox.buffer
            assert reader.conns[fake.address].in_flight == 0
            stream = reader.messages()  # a new loop takes RDY up again
            await fake.wait_for("RDY 5", 2)
            await stream.aclose()
            await reader.close()

    run(main())


def test_handed_out_messages_hold_their_rdy_until_answered():
    async def main():
        async with FakeNSQD() as fake:
            reader, sender = await iterated(fake, 3, [b"a", b"b", b"c"])
            stream = reader.messages()
            held = [await anext(stream) for _ in range(3)]
            await sender
            assert not reader._inbox.buffer
            assert reader.conns[fake.address].in_flight == 3  # handed out, still in flight
            assert not any(message.has_responded() for message in held)  # never auto-FINed
            held[1].finish()
            await fake.wait_for("FIN")
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 3", f"FIN {mid(1)}"]
            assert reader.conns[fake.address].in_flight == 2
            await held[0].req(0, backoff=False)
            await held[2].fin()
            await fake.wait_for("FIN", 2)
            assert fake.transcript[3:] == [f"FIN {mid(1)}", f"REQ {mid(0)} 0", f"FIN {mid(2)}"]
            await stream.aclose()
            await reader.close()

    run(main())


def test_an_exception_in_the_loop_requeues_the_buffer_but_not_the_message_in_hand():
    async def main():
        async with FakeNSQD() as fake:
            reader, sender = await iterated(fake, 4, [b"a", b"b", b"c", b"d"])
            in_hand = None
            with pytest.raises(Boom):
                async for message in reader.messages():
                    in_hand = message
                    await buffered(reader, 3)
                    raise Boom
            await sender
            await fake.wait_for("REQ", 3)
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 4", "RDY 0",
                                       f"REQ {mid(1)} 0", f"REQ {mid(2)} 0", f"REQ {mid(3)} 0"]
            assert in_hand.id.decode() == mid(0) and not in_hand.has_responded()
            assert reader.conns[fake.address].in_flight == 1  # still the user's to answer
            await in_hand.req(0, backoff=False)
            await fake.wait_for(f"REQ {mid(0)}")
            await reader.close()

    run(main())


def test_cancelling_the_consumer_requeues_the_buffer_whether_it_waits_or_works():
    async def main():
        async with FakeNSQD() as fake:
            reader, _ = await iterated(fake, 3)

            async def consume(block):
                async for message in reader.messages():
                    await message.fin()
                    await block.wait()

            # cancelled while waiting in __anext__ (nothing buffered): RDY back to 0
            waiting = asyncio.ensure_future(consume(asyncio.Event()))
            await fake.wait_for("RDY 3")
            waiting.cancel()
            await fake.wait_for("RDY 0")
            assert waiting.cancelled()
            # cancelled in the loop body, with two messages buffered behind the one in hand
            sender = send_on(fake, "RDY 3", [b"a", b"b", b"c"])
            working = asyncio.ensure_future(consume(asyncio.Event()))
            await fake.wait_for("FIN")
            await buffered(reader, 2)
            working.cancel()
            await fake.wait_for("REQ", 2)
            await sender
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 3", "RDY 0", "RDY 3",
                                       f"FIN {mid(0)}", "RDY 0", f"REQ {mid(1)} 0", f"REQ {mid(2)} 0"]
            await reader.close()

    run(main())


def test_a_message_on_its_way_after_the_last_stream_closed_is_requeued_as_it_arrives():
    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, None, max_in_flight=2)
            peer = await subscribed(fake)
            async with reader.messages():
                await fake.wait_for("RDY 2")
            await fake.wait_for("RDY 0")
            peer.send_message(b"late")
            await fake.wait_for("REQ")
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 2", "RDY 0", f"REQ {mid(0)} 0"]
            await reader.close()

    run(main())


def test_a_stream_held_in_a_variable_survives_break_until_its_async_with_ends():
    async def main():
        async with FakeNSQD() as fake:
            reader, sender = await iterated(fake, 3, [b"a", b"b", b"c"])
            async with reader.messages() as stream:
                async for message in stream:
                    await buffered(reader, 2)
                    await message.fin()
                    break
                assert not stream.closed and len(reader._inbox.buffer) == 2
                message = await anext(stream)  # the same stream goes on where it stopped
                assert message.body == b"b"
                await message.fin()
            assert stream.closed
            await sender
            await fake.wait_for("REQ")
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 3", f"FIN {mid(0)}",
                                       f"FIN {mid(1)}", "RDY 0", f"REQ {mid(2)} 0"]
            with pytest.raises(StopAsyncIteration):
                await anext(stream)
            await reader.close()

    run(main())


def test_close_requeues_the_buffer_after_rdy_0_and_ends_the_loop():
    async def main():
        async with FakeNSQD() as fake:
            reader, sender = await iterated(fake, 4, [b"a", b"b", b"c"])
            got = []
            in_body = asyncio.Event()
            go_on = asyncio.Event()

            async def consume():
                async for message in reader.messages():
                    got.append(message.body)
                    await message.fin()
                    in_body.set()
                    await go_on.wait()
                return "ended"

            consumer = asyncio.ensure_future(consume())
            await in_body.wait()
            await buffered(reader, 2)
            closing = reader.close()
            await fake.wait_for("REQ", 2)
            go_on.set()
            assert await consumer == "ended"  # the next __anext__ ended the loop
            await closing
            await sender
            assert got == [b"a"]
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 4", f"FIN {mid(0)}", "RDY 0",
                                       f"REQ {mid(1)} 0", f"REQ {mid(2)} 0", "CLS"]
            with pytest.raises(StopAsyncIteration):  # a stream opened after close ends at once
                await anext(reader.messages())

    run(main())


def test_close_ends_streams_waiting_for_a_message():
    async def main():
        async with FakeNSQD() as fake:
            reader, _ = await iterated(fake, 4)

            async def idle():
                async for _ in reader.messages():
                    raise AssertionError("no message was sent")
                return "ended"

            waiters = [asyncio.ensure_future(idle()) for _ in range(2)]
            await fake.wait_for("RDY 4")
            await reader.close()
            assert await asyncio.gather(*waiters) == ["ended", "ended"]
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 4", "RDY 0", "CLS"]

    run(main())


def test_messages_of_a_lost_connection_are_not_handed_out():
    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, None, max_in_flight=3)
            first = await subscribed(fake)
            sender = send_on(fake, "RDY 3", [b"old1", b"old2"])
            async with reader.messages() as stream:
                await buffered(reader, 2)
                await sender
                first.close()
                await until(lambda: not reader._inbox.buffer)  # nsqd redelivers them itself
                second = await fake.wait_peer(1)
                await until(lambda: second.transcript[-1:] == ["RDY 3"])
                second.send_message(b"new")
                message = await anext(stream)
                assert message.body == b"new"
                await message.fin()
            assert not [line for line in second.transcript if line.startswith("REQ")]
            await reader.close()

    run(main())


def test_requeue_with_backoff_backs_the_reader_off_and_fin_resumes_it():
    async def main():
        async with FakeNSQD() as fake:
            reader = reader_for(fake, None, max_in_flight=5)
            peer = await subscribed(fake)
            sender = send_on(fake, "RDY 5", [b"fails"])
            async with reader.messages() as stream:
                message = await anext(stream)
                await message.req(delay=1)  # backoff=True by default: a failure, as a False handler
                await fake.wait_for("RDY 1")  # window over: one connection tests the waters
                peer.send_message(b"works")
                message = await anext(stream)
                await message.fin()  # success: backoff over
                await fake.wait_for("RDY 5", 2)
            await sender
            assert fake.transcript[:7] == ["IDENTIFY", "SUB t c", "RDY 5", f"REQ {mid(0)} 1000",
                                           "RDY 0", "RDY 1", f"FIN {mid(1)}"]
            assert fake.transcript[7] == "RDY 5"
            assert not reader.backoff_window.in_backoff
            await reader.close()

    run(main())


def test_max_tries_gives_a_message_up_before_it_is_handed_out():
    async def main():
        async with FakeNSQD() as fake:
            given_up = []

            class Reader(nsq.Reader):
                def giving_up(self, message):
                    given_up.append(message.body)

            reader = Reader("t", "c", nsqd_tcp_addresses=[fake.address], max_tries=3,
                            max_in_flight=5)
            peer = await subscribed(fake)
            sender = send_on(fake, "RDY 5", [b"tired"], attempts=4)
            async with reader.messages() as stream:
                await fake.wait_for("FIN")
                peer.send_message(b"fresh")
                message = await anext(stream)
                assert message.body == b"fresh"
                await message.fin()
            await sender
            assert given_up == [b"tired"]
            assert fake.transcript[:4] == ["IDENTIFY", "SUB t c", "RDY 5", f"FIN {mid(0)}"]
            await reader.close()

    run(main())


def test_two_streams_share_the_messages_and_the_last_to_close_requeues():
    async def main():
        async with FakeNSQD() as fake:
            reader, sender = await iterated(fake, 6, [b"%d" % i for i in range(6)])
            seen = {"one": [], "two": []}

            async def worker(name):
                async for message in reader.messages():
                    seen[name].append(message.body)
                    await message.fin()
                    if len(seen[name]) == 2:
                        return
                    await asyncio.sleep(0)  # let the other worker take one

            workers = [asyncio.ensure_future(worker(name)) for name in seen]
            await asyncio.gather(*workers)
            await sender
            await fake.wait_for("REQ", 2)
            assert len(seen["one"]) == len(seen["two"]) == 2
            taken = sorted(seen["one"] + seen["two"])
            assert len(set(taken)) == 4
            assert [line for line in fake.transcript if line.startswith(("RDY", "REQ"))] == [
                "RDY 6", "RDY 0"] + [f"REQ {mid(i)} 0" for i in range(6) if b"%d" % i not in taken]
            await reader.close()

    run(main())


def test_a_timed_out_wait_on_a_held_stream_keeps_the_stream_open():
    async def main():
        async with FakeNSQD() as fake:
            reader, _ = await iterated(fake, 3)
            stream = reader.messages()
            await fake.wait_for("RDY 3")
            with pytest.raises(asyncio.TimeoutError):  # e.g. flush a partial batch on a timer
                await asyncio.wait_for(anext(stream), 0.05)
            assert not stream.closed
            fake.peers[0].send_message(b"later")
            message = await anext(stream)
            await message.fin()
            await fake.wait_for("FIN")
            assert fake.transcript == ["IDENTIFY", "SUB t c", "RDY 3", f"FIN {mid(0)}"]
            await stream.aclose()
            await reader.close()

    run(main())
