"""Stopping an asyncio TCP server without leaving a just-accepted connection behind."""

from __future__ import annotations

import asyncio

# An accept in one loop pass builds its transport in a task one pass later; the protocol's
# connection_made comes one pass after that, and a start_server callback's task one more.
_PASSES_TO_ATTACH = 3


async def stop_accepting(server: asyncio.AbstractServer) -> None:
    """Take no new connection, then let those already accepted reach their protocol, so that the
    caller's close of every client sees them. Closing the server in between would leave such a
    connection open until the garbage collector finds it (CPython gh-109564)."""
    loop = asyncio.get_running_loop()
    for sock in getattr(server, "sockets", None) or ():
        loop.remove_reader(sock.fileno())
    for _ in range(_PASSES_TO_ATTACH):
        await asyncio.sleep(0)
