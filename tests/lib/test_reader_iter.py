"""Reader.messages() through an nsqd (embedded, or the real one via NSQCLI_TEST_NSQD): what nsqd's
own stats say about back-pressure, requeues on leaving the loop, and closing."""

import asyncio

import pytest
from polling import until
from test_reader_e2e import FAST, run

import nsqcli.lib as nsq


class Boom(Exception):
    pass


def channel(nsqd, topic):
    return nsqd.channel_stats(topic, "c") or {}


def counts(nsqd, topic):
    """(depth, in flight, requeued so far) of the channel, as nsqd reports them."""
    stats = channel(nsqd, topic)
    return stats["depth"], stats["in_flight_count"], stats["requeue_count"]


def publish(nsqd, topic, n):
    bodies = [b"m%d" % i for i in range(n)]
    nsqd.mpub(topic, bodies)
    return bodies


def reader_for(nsqd, topic, **kwargs):
    return nsq.Reader(topic, "c", nsqd_tcp_addresses=nsqd.tcp_address, **{**FAST, **kwargs})


def buffered(reader):
    return len(reader._inbox.buffer)


def test_iterates_every_message_once_and_leaves_the_channel_empty(nsqd):
    bodies = publish(nsqd, "iter_all", 300)

    async def main():
        got = []
        async with reader_for(nsqd, "iter_all", max_in_flight=20) as reader:
            async for message in reader.messages():
                got.append(message.body)
                await message.fin()
                if len(got) == len(bodies):
                    break
        return got

    assert sorted(run(main())) == sorted(bodies)
    assert counts(nsqd, "iter_all") == (0, 0, 0)


def test_messages_returns_the_public_message_stream(nsqd):
    """What messages() returns is nsqcli.lib.MessageStream, so users can name its type."""
    async def main():
        async with reader_for(nsqd, "iter_type") as reader:
            stream = reader.messages()
            assert type(stream) is nsq.MessageStream and "MessageStream" in nsq.__all__
            await stream.aclose()

    run(main())


def test_at_most_max_in_flight_buffered_and_unanswered_messages_keep_their_rdy(nsqd):
    publish(nsqd, "iter_rdy", 30)

    async def main():
        reader = reader_for(nsqd, "iter_rdy", max_in_flight=5)
        stream = reader.messages()
        await until(lambda: buffered(reader) == 5)
        assert counts(nsqd, "iter_rdy") == (25, 5, 0)
        held = [await anext(stream) for _ in range(5)]  # handed out, none answered
        assert buffered(reader) == 0
        await held.pop().fin()  # frees exactly one: nsqd sends one more, no other
        await until(lambda: buffered(reader) == 1)
        assert counts(nsqd, "iter_rdy") == (24, 5, 0)
        for message in held:
            await message.fin()
        await reader.close()  # the one buffered goes back

    run(main())
    assert counts(nsqd, "iter_rdy") == (25, 0, 1)


def test_break_requeues_the_buffered_messages_at_once(nsqd):
    publish(nsqd, "iter_break", 10)

    async def main():
        reader = reader_for(nsqd, "iter_break", max_in_flight=10)
        first = []
        async for message in reader.messages():
            if not first:
                await until(lambda: buffered(reader) == 9)
            first.append(message)
            await message.fin()
            if len(first) == 2:
                break
        # back at nsqd at once (not after its msg_timeout), and delivered again with attempts 2
        await until(lambda: channel(nsqd, "iter_break").get("requeue_count") == 8)
        again = []
        async for message in reader.messages():
            again.append(message)
            await message.fin()
            if len(again) == 8:
                break
        await reader.close()
        return first, again

    first, again = run(main())
    assert [m.attempts for m in first] == [1, 1]
    assert [m.attempts for m in again] == [2] * 8
    assert sorted(m.body for m in first + again) == sorted(b"m%d" % i for i in range(10))
    assert counts(nsqd, "iter_break") == (0, 0, 8)


def test_an_exception_requeues_the_buffer_and_the_message_in_hand_stays_in_flight(nsqd):
    publish(nsqd, "iter_exc", 5)

    async def main():
        reader = reader_for(nsqd, "iter_exc", max_in_flight=5)
        in_hand = None
        with pytest.raises(Boom):
            async for message in reader.messages():
                in_hand = message
                await until(lambda: buffered(reader) == 4)
                raise Boom
        await until(lambda: channel(nsqd, "iter_exc").get("requeue_count") == 4)
        assert counts(nsqd, "iter_exc") == (4, 1, 4)  # the one in flight is the user's to answer
        await in_hand.fin()
        await reader.close()

    run(main())
    assert counts(nsqd, "iter_exc") == (4, 0, 4)


def test_cancelling_the_consuming_task_requeues_the_buffer(nsqd):
    publish(nsqd, "iter_cancel", 6)

    async def main():
        reader = reader_for(nsqd, "iter_cancel", max_in_flight=6)
        working = asyncio.Event()

        async def consume():
            async for message in reader.messages():
                await message.fin()
                working.set()
                await asyncio.Event().wait()  # busy with it until cancelled

        task = asyncio.ensure_future(consume())
        await working.wait()
        await until(lambda: buffered(reader) == 5)
        task.cancel()
        await until(lambda: channel(nsqd, "iter_cancel").get("requeue_count") == 5)
        await reader.close()
        assert task.cancelled()

    run(main())
    assert counts(nsqd, "iter_cancel") == (5, 0, 5)


def test_close_from_another_task_ends_the_loops_of_a_pool_of_workers(nsqd):
    bodies = publish(nsqd, "iter_pool", 200)

    async def main():
        reader = reader_for(nsqd, "iter_pool", max_in_flight=16)
        seen = {name: [] for name in range(3)}

        async def worker(name):
            async for message in reader.messages():
                seen[name].append(message.body)
                await message.fin()
                await asyncio.sleep(0)  # a real worker would await its work here
            return name

        workers = [asyncio.ensure_future(worker(name)) for name in seen]
        await until(lambda: sum(map(len, seen.values())) == len(bodies))
        await reader.close()
        assert sorted(await asyncio.gather(*workers)) == [0, 1, 2]  # each loop ended
        return seen

    seen = run(main())
    taken = [body for bodies_ in seen.values() for body in bodies_]
    assert sorted(taken) == sorted(bodies)  # each message to exactly one worker
    assert all(seen.values())
    assert counts(nsqd, "iter_pool") == (0, 0, 0)


def test_a_reader_is_consumed_by_a_handler_or_by_messages_not_both():
    class Subclassed(nsq.Reader):
        def process_message(self, message):
            return True

    async def main():
        address = "127.0.0.1:1"  # never connects: the checks come first
        with_handler = nsq.Reader("t", "c", lambda m: True, nsqd_tcp_addresses=address)
        with pytest.raises(RuntimeError, match="not both"):
            with_handler.messages()
        with pytest.raises(RuntimeError, match="not both"):
            Subclassed("t", "c", nsqd_tcp_addresses=address).messages()
        iterated = nsq.Reader("t", "c", nsqd_tcp_addresses=address)
        stream = iterated.messages()
        with pytest.raises(RuntimeError, match="consumed with messages"):
            iterated.set_message_handler(lambda m: True)
        assert iterated.message_handler is None
        assert "open" in repr(stream)
        await stream.aclose()
        assert stream.closed and "closed" in repr(stream)
        await nsq.close_all()

    run(main())


def test_a_message_that_woke_a_cancelled_waiter_goes_to_another_stream():
    from nsqcli.lib.message import Message
    from nsqcli.lib.reader_iter import Inbox, MessageStream

    class NoConnections:  # what Inbox needs of its Reader
        _closing = False

        def _reapply_rdy(self):
            pass

    async def main():
        inbox = Inbox(NoConnections())
        first, second = MessageStream(inbox), MessageStream(inbox)
        woken = asyncio.ensure_future(anext(first))
        other = asyncio.ensure_future(anext(second))
        await asyncio.sleep(0)  # both wait, first in line
        message = Message(b"0" * 16, b"body", 0, 1)
        inbox.put(message)  # wakes the first...
        woken.cancel()  # ...which is cancelled before it runs
        assert await asyncio.wait_for(other, 5) is message
        assert woken.cancelled() and not inbox.buffer

    run(main())
