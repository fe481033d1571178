"""What the Reader transcript tests share: fast timings, the fake's message ids, waits."""

import asyncio

from fake_nsqd import new_message_id

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


def switchable_reader(off):
    """A Reader class whose deprecated ``disabled()`` hook returns its ``off`` attribute."""
    class Switchable(nsq.Reader):
        @classmethod
        def disabled(cls):
            return cls.off

    Switchable.off = off
    return Switchable
