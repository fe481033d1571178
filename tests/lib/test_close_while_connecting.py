"""A Reader or Writer closed while its connection is still connecting closes that socket itself,
rather than leaving it to the garbage collector once the event loop ends (ResourceWarning: seen
as `async with Reader(...)` left at once under asyncio.wait_for), on either broker."""

import asyncio
import gc
import warnings

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
