"""A broker that stops closes every connection it accepted, even one accepted a moment before
(asyncio builds an accepted connection's transport a loop pass later: CPython gh-109564)."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings

import pytest

from nsqcli.broker.nsqd import NSQD, NSQDOptions
from nsqcli.broker.nsqlookupd import NSQLookupd, NSQLookupdOptions

LOCAL = {"tcp_address": "127.0.0.1:0", "http_address": "127.0.0.1:0"}
BROKERS = {
    "nsqd": lambda: NSQD(NSQDOptions(**LOCAL)),
    "nsqlookupd": lambda: NSQLookupd(NSQLookupdOptions(**LOCAL)),
}


def _connect_then_stop(make, passes: int) -> socket.socket:
    """Connect (the kernel completes it before any accept), let the loop run ``passes`` passes,
    stop the broker; returns the client's socket."""

    async def scenario() -> socket.socket:
        broker = make()
        await broker.start()
        client = socket.create_connection(("127.0.0.1", broker.tcp_port), timeout=5)
        for _ in range(passes):
            await asyncio.sleep(0)
        await broker.stop()
        return client

    return asyncio.run(asyncio.wait_for(scenario(), 20))


@pytest.mark.parametrize("kind", BROKERS)
@pytest.mark.parametrize("passes", range(6))  # 2 and 3 hit the window on 3.10-3.13
def test_stop_closes_a_connection_accepted_just_before(kind, passes):
    client = _connect_then_stop(BROKERS[kind], passes)
    with client:
        try:
            closed = client.recv(1) == b""  # EOF: the broker closed its end
        except ConnectionResetError:
            closed = True  # refused from the backlog: never accepted
        except socket.timeout:
            closed = False
    assert closed, "the broker left the connection open"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
