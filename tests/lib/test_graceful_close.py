"""Closing hands nsqd every answer first: no message may stay in flight at nsqd after close()."""

import asyncio
import logging

from channels import left_in_flight, settled_depth
from polling import until

import nsqcli.lib as nsq
from nsqcli.lib.conn import AsyncConn


def test_reader_close_leaves_nothing_in_flight_at_nsqd(nsqd, caplog):
    nsqd.mpub("graceful", [b"m%d" % i for i in range(3000)])
    conns = []

    async def main():
        seen = []
        reader = nsq.Reader("graceful", "c", lambda m: seen.append(m.body) or True,
                            nsqd_tcp_addresses=nsqd.tcp_address, max_in_flight=500)
        while len(seen) < 1000:
            await asyncio.sleep(0.005)
        conns.extend(reader.conns.values())
        await reader.close()
        return seen

    with caplog.at_level(logging.WARNING, logger="nsqcli.lib"):
        seen = asyncio.run(main())
    stats = nsqd.channel_stats("graceful", "c")
    # read at once: every FIN and REQ reached nsqd before the close; only a message nsqd sent
    # after our side was shut (its pump may send one after CLOSE_WAIT) can still be in flight
    late = left_in_flight(conns)
    assert stats["in_flight_count"] == late
    assert stats["depth"] == 3000 - len(seen) - late
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


def test_nsqd_takes_req_0_after_close_wait_and_requeues_at_once(nsqd):
    """What close_gracefully() does with a message that comes after CLOSE_WAIT rests on this:
    nsqd takes ``REQ <id> 0`` in its closing state and the message is back in the channel's
    queue at once, neither in flight (msg_timeout) nor deferred."""
    nsqd.create_topic("late_req")
    nsqd.create_channel("late_req", "c")
    nsqd.mpub("late_req", [b"held"])

    async def main():
        conn = AsyncConn(nsqd.host, nsqd.tcp_port)
        received = []
        conn.on("message", lambda conn, message: received.append(message))
        await conn.wait_ready(5)
        assert await conn.subscribe("late_req", "c") == b"OK"
        conn.send_rdy(1)
        await until(lambda: received)
        assert await conn.start_close() == b"CLOSE_WAIT"
        received[0].requeue(delay=0, backoff=False)
        await conn.flush()
        # read while the connection is still open: nothing may wait for its close
        depth = await asyncio.to_thread(settled_depth, nsqd, "late_req", "c", 10.0, 1)
        await conn.close_gracefully(timeout=2)
        return depth, conn

    depth, conn = asyncio.run(asyncio.wait_for(main(), 20))
    assert depth == 1 and conn.close_error is None
    stats = nsqd.channel_stats("late_req", "c")
    assert stats["requeue_count"] == 1 and stats["timeout_count"] == 0

