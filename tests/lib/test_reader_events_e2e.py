"""The Reader under production events, end to end through nsqd (embedded, or real via
NSQCLI_TEST_NSQD / NSQCLI_TEST_NSQLOOKUPD): restarts of nsqlookupd and nsqd, large messages."""

import asyncio

import nsqcli.lib as nsq

FAST = dict(backoff_multiplier=0.01, rdy_redistribute_interval=0.1, reconnect_interval=0.05,
            close_timeout=5.0, lookupd_poll_jitter=0.0)


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(predicate, timeout=10.0, interval=0.02):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(interval)


def test_a_message_larger_than_16_mib_is_consumed_with_the_default_options(nsqd_factory):
    # nsqd does not announce --max-msg-size: a client must accept any message nsqd can send
    nsqd = nsqd_factory(max_msg_size=20 * 1024 * 1024)
    body = b"L" * (17 * 1024 * 1024)
    nsqd.pub("large", body)

    async def main():
        got = []
        reader = nsq.Reader("large", "c", lambda m: got.append(len(m.body)) or True,
                            nsqd_tcp_addresses=nsqd.tcp_address, **FAST)
        await until(lambda: got, timeout=20)
        await reader.close()
        return got

    assert run(main()) == [len(body)]
    stats = nsqd.channel_stats("large", "c")
    assert stats["depth"] == 0 and stats["in_flight_count"] == 0 and stats["requeue_count"] == 0
