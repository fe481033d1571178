"""End of a hostile exchange with the embedded nsqd: read what it answers, hang up, and prove
the broker still serves a fresh client (shared by the broker fuzz tests)."""

from __future__ import annotations

import asyncio

from nsqcli.lib.protocol import commands as cmd

OK_FRAME = b"\x00\x00\x00\x06\x00\x00\x00\x00OK"


async def hang_up_and_check_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                  tcp_port: int) -> None:
    try:
        await writer.drain()
        await asyncio.wait_for(reader.read(1 << 20), 0.05)
    except (asyncio.TimeoutError, ConnectionError):
        pass
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
    writer.write(b"  V2" + cmd.pub("alive", b"ok"))
    assert await asyncio.wait_for(reader.readexactly(len(OK_FRAME)), 2) == OK_FRAME
    writer.close()
