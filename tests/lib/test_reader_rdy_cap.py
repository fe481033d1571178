"""Reader.rdy_cap: every RDY the Reader decides (after SUB, ramps, ticks) passes through it."""

import asyncio

from fake_nsqd import FakeNSQD

import nsqcli.lib as nsq

FAST = dict(rdy_redistribute_interval=0.05, close_timeout=2.0)


def test_rdy_cap_bounds_every_rdy_the_reader_sends():
    async def main():
        async with FakeNSQD() as fake:
            asked = []
            limit = [3]

            def cap(conn, value):
                asked.append(value)
                return min(value, limit[0])

            reader = nsq.Reader("t", "c", lambda m: True, nsqd_tcp_addresses=[fake.address],
                                max_in_flight=10, **FAST)
            reader.rdy_cap = cap
            await fake.wait_for("RDY")
            assert fake.transcript[-1] == "RDY 3" and asked == [10]
            limit[0] = 7
            await fake.wait_for("RDY 7")  # the next tick asks again (the share is 10)
            fake.peers[0].send_message(b"x")
            await fake.wait_for("FIN")
            await reader.close()
            assert [line for line in fake.transcript if line.startswith("RDY")] == [
                "RDY 3", "RDY 7", "RDY 0"]

    asyncio.run(asyncio.wait_for(main(), 20))
