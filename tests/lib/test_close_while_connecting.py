"""A Reader, Writer or Publisher closed while its connection is still connecting closes that
socket itself, rather than leaving it to the garbage collector once the event loop ends
(ResourceWarning: seen as `async with Reader(...)` left at once under asyncio.wait_for), on either
broker. The Publisher cases check the cause directly: no connect attempt is left running (which
ResourceWarning only shows when the loop happens to end in the wrong moment)."""

import asyncio
import contextlib
import gc
import socket
import warnings

import pytest

from tornado.ioloop import IOLoop

import nsqcli.lib as nsq


def leaked_sockets(main):
    """ResourceWarnings about sockets while ``main()`` runs under asyncio.wait_for and when what
    it left is collected."""
    async def next_loop():
        IOLoop.current()  # tornado forgets the closed loop's IOLoop and the sockets it watched

    gc.collect()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        asyncio.run(asyncio.wait_for(main(), 30))
        asyncio.run(next_loop())
        gc.collect()
    return [str(w.message) for w in seen
            if issubclass(w.category, ResourceWarning) and "socket" in str(w.message)]


def test_a_reader_left_while_connecting(nsqd):
    async def main():
        async with nsq.Reader("t", "c", lambda message: True, nsqd_tcp_addresses=nsqd.tcp_address):
            pass

    assert leaked_sockets(main) == []


def test_a_reader_whose_message_stream_closed_before_it_connected(nsqd):
    async def main():
        async with nsq.Reader("t", "c", nsqd_tcp_addresses=nsqd.tcp_address) as reader:
            await reader.messages().aclose()

    assert leaked_sockets(main) == []


def test_a_writer_left_while_connecting(nsqd):
    async def main():
        async with nsq.Writer([nsqd.tcp_address]):
            pass

    assert leaked_sockets(main) == []


@contextlib.contextmanager
def unanswered_port():
    """A 127.0.0.1 port whose accept queue is full: Linux drops the SYN of a further connect, so
    that connect stays in progress until the client's own timeout ends it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    queued = []
    try:
        for _ in range(2):  # the queue holds backlog + 1: these fill it, never accepted
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(address)
            queued.append(sock)
        yield f"127.0.0.1:{address[1]}"
    finally:
        for sock in queued:
            sock.close()
        listener.close()


def started_and_left_running(main):
    """``main`` wrapped: it returns the tasks started meanwhile and still running at its end (a
    connect attempt among them would leave its socket to the GC if the loop ended then)."""
    async def wrapped():
        before = asyncio.all_tasks()
        await main()
        return [task for task in asyncio.all_tasks() if task not in before]

    return wrapped


def test_a_publisher_cancelled_while_connecting_ends_its_attempt_first():
    left = []

    async def main():
        publisher = nsq.Publisher("t", address, timeout=1)
        with pytest.raises(asyncio.TimeoutError):  # cancelled while its TCP connect is pending
            await asyncio.wait_for(publisher.start(), 0.1)

    async def checked():
        left.extend(await started_and_left_running(main)())

    with unanswered_port() as address:
        assert leaked_sockets(checked) == []
    assert left == []


def test_a_publisher_whose_connect_gets_no_answer_gives_up_after_connect_timeout():
    left = []

    async def main():
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(nsq.NsqdUnreachableError):
            await nsq.Publisher("t", address, timeout=10, connect_timeout=0.3).start()
        assert loop.time() - began < 5  # bounded by connect_timeout, not by timeout

    async def checked():
        left.extend(await started_and_left_running(main)())

    with unanswered_port() as address:
        assert leaked_sockets(checked) == []
    assert left == []


def test_a_publisher_closed_while_an_nsqd_is_retried_in_the_background(nsqd):
    left = []

    async def main():
        async with nsq.Publisher("pub_close_connecting", [nsqd.tcp_address, address],
                                 connect_timeout=0.5) as publisher:  # one nsqd suffices
            await publisher.publish(b"x")
            assert (await publisher.flush()).acknowledged == 1

    async def checked():
        left.extend(await started_and_left_running(main)())

    with unanswered_port() as address:
        assert leaked_sockets(checked) == []
    assert left == []
