"""nsqcli.cli.timers: the repeating timer and first_of used by nsq-to-file and nsq-to-nsq."""

import asyncio

from nsqcli.cli.timers import Repeating, first_of
from polling import until


def test_repeating_asks_an_adaptive_interval_each_time_and_stops_when_cancelled():
    async def main():
        asked, fired = [], []

        def interval():
            asked.append(len(fired))
            return 0.01

        timer = Repeating(interval, lambda: fired.append(1))
        await until(lambda: len(fired) >= 3, 10)
        timer.cancel()
        count = len(fired)
        await asyncio.sleep(0.05)  # a cancelled timer would have fired a few times by now
        assert len(fired) == count
        assert asked[:3] == [0, 1, 2]  # asked before the first wait and after every call

    asyncio.run(main())


def test_repeating_cancelled_by_its_own_action_fires_no_more():
    async def main():
        fired = []
        timer = Repeating(0.01, lambda: (fired.append(1), timer.cancel()))
        await until(lambda: fired, 10)
        await asyncio.sleep(0.05)
        assert fired == [1]

    asyncio.run(main())


def test_first_of_returns_the_winner_and_cancels_the_others():
    async def main():
        stop, never = asyncio.Event(), asyncio.Event()
        loser = asyncio.ensure_future(never.wait())
        winner = asyncio.ensure_future(stop.wait())
        asyncio.get_running_loop().call_soon(stop.set)
        assert await first_of(loser, winner) == [winner]
        await asyncio.sleep(0)
        assert loser.cancelled()

    asyncio.run(main())


def test_first_of_cancelled_cancels_everything():
    async def main():
        never = asyncio.Event()
        inner = asyncio.ensure_future(never.wait())
        outer = asyncio.ensure_future(first_of(inner, never.wait()))
        await asyncio.sleep(0.01)
        outer.cancel()
        await asyncio.gather(outer, return_exceptions=True)
        await asyncio.sleep(0)
        assert outer.cancelled() and inner.cancelled()

    asyncio.run(main())
