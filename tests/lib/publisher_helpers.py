"""Shared by the Publisher tests: the callbacks' record, nsqd's counts, reading bodies back."""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

import nsqcli.lib as nsq


def run(coro: Any, timeout: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def message_count(nsqd: Any, topic: str) -> int:
    entry = nsqd.topic_stats(topic)
    return 0 if entry is None else entry["message_count"]


class Outcomes:
    """Records every number each callback got; a number reported twice fails the test."""

    def __init__(self) -> None:
        self.acknowledged: list[int] = []
        self.given_up: list[int] = []
        self.skipped: list[int] = []
        self._seen: set[int] = set()

    def _add(self, into: list[int], numbers: Sequence[int]) -> None:
        assert isinstance(numbers, (range, list)), type(numbers)
        for number in numbers:
            assert number not in self._seen, f"record {number} reported twice"
            self._seen.add(number)
        into.extend(numbers)
        into.sort()

    def callbacks(self) -> dict[str, Any]:
        return {"on_acknowledged": lambda numbers: self._add(self.acknowledged, numbers),
                "on_given_up": lambda numbers: self._add(self.given_up, numbers),
                "on_skipped": lambda numbers: self._add(self.skipped, numbers)}


async def read_bodies(nsqd: Any, topic: str, n: int, channel: str = "check") -> list[bytes]:
    """The first ``n`` bodies a new channel of ``topic`` gets (FINed), in delivery order."""
    bodies: list[bytes] = []
    if n == 0:
        return bodies
    async with nsq.Reader(topic, channel, nsqd_tcp_addresses=[nsqd.tcp_address],
                          max_in_flight=500) as reader:
        async for message in reader.messages():
            bodies.append(message.body)
            await message.fin()
            if len(bodies) == n:
                break
    return bodies
