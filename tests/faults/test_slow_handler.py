"""A slow handler: TOUCH keeps its message in flight past msg_timeout; a message left alone
past msg_timeout is redelivered with its attempts counted, and the late FIN of the first
delivery is a harmless E_FIN_FAILED."""

from __future__ import annotations

import asyncio
import time

from polling import until

from fault_helpers import wait_for

from nsqcli.lib.reader import Reader

MSG_TIMEOUT_MS = 600


def test_touch_keeps_the_message_and_a_timeout_redelivers_with_attempts(nsqd_factory, caplog):
    nsqd = nsqd_factory(msg_timeout_ms=MSG_TIMEOUT_MS)
    nsqd.create_topic("slow")
    nsqd.create_channel("slow", "c")
    nsqd.pub("slow", b"touched")
    nsqd.pub("slow", b"left-alone")
    deliveries: list[tuple[bytes, int]] = []

    async def handle(message) -> None:
        deliveries.append((message.body, message.attempts))
        if message.body == b"touched":
            for _ in range(6):  # 1.8 s in all, three times msg_timeout
                await asyncio.sleep(0.3)
                message.touch()
            message.finish()
        elif message.attempts == 1:
            # no TOUCH: nsqd takes it back once its queue scan sees the timeout (msg_timeout
            # after delivery, and up to 5 s more while nsqd's scan list lacks a new channel)
            await until(lambda: (b"left-alone", 2) in deliveries, timeout=20)
            message.finish()  # too late: E_FIN_FAILED, logged, the connection stays
        else:
            message.finish()

    tasks: set[asyncio.Task] = set()

    def handler(message) -> None:
        message.enable_async()
        task = asyncio.get_running_loop().create_task(handle(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def main() -> int:
        reader = Reader("slow", "c", handler, nsqd_tcp_addresses=[nsqd.tcp_address],
                        max_in_flight=5)
        async with reader:
            deadline = time.monotonic() + 25
            while (len(deliveries) < 3 or tasks) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            return len(reader.conns)

    assert asyncio.run(asyncio.wait_for(main(), 40)) == 1  # one connection all along
    assert sorted(deliveries) == [(b"left-alone", 1), (b"left-alone", 2), (b"touched", 1)]
    channel = nsqd.channel_stats("slow", "c")
    assert channel["timeout_count"] == 1
    assert channel["depth"] == 0
    assert wait_for(lambda: nsqd.channel_stats("slow", "c")["in_flight_count"] == 0)
    assert "E_FIN_FAILED" in caplog.text
