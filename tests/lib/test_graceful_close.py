"""Closing hands nsqd every answer first: no message may stay in flight at nsqd after close()."""

import asyncio
import logging

import nsqcli.lib as nsq
from nsqcli.lib.conn import AsyncConn


def test_reader_close_leaves_nothing_in_flight_at_nsqd(nsqd, caplog):
    nsqd.mpub("graceful", [b"m%d" % i for i in range(3000)])

    async def main():
        seen = []
        reader = nsq.Reader("graceful", "c", lambda m: seen.append(m.body) or True,
                            nsqd_tcp_addresses=nsqd.tcp_address, max_in_flight=500)
        while len(seen) < 1000:
            await asyncio.sleep(0.005)
        await reader.close()
        return seen

    with caplog.at_level(logging.WARNING, logger="nsqcli.lib"):
        seen = asyncio.run(main())
    stats = nsqd.channel_stats("graceful", "c")
    assert stats["in_flight_count"] == 0  # read at once: every FIN reached nsqd before the close
    assert stats["depth"] == 3000 - len(seen)
    assert not [r for r in caplog.records if "closed the connection" in r.getMessage()]


def test_close_gracefully_waits_for_nsqd_to_close_its_side(nsqd):
    async def main():
        conn = AsyncConn(nsqd.host, nsqd.tcp_port)
        conn.connect()
        await conn.wait_ready(5)
        assert await conn.publish("graceful_pub", b"x") == b"OK"
        await conn.close_gracefully(timeout=2)
        assert conn.closed() and conn.close_error is None  # nsqd's EOF was expected, not an error

    asyncio.run(main())
    assert nsqd.topic_stats("graceful_pub")["message_count"] == 1
