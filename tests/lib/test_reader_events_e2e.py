"""The Reader under production events, end to end through nsqd (embedded, or real via
NSQCLI_TEST_NSQD / NSQCLI_TEST_NSQLOOKUPD): restarts of nsqlookupd and nsqd, large messages."""

import asyncio

from test_reader_e2e import FAST, run, until

import nsqcli.lib as nsq


def nsqd_listed_by(nsqlookupd, nsqd_factory, topic):
    """An nsqd registered with ``nsqlookupd``, holding one message ``before`` on ``topic``."""
    nsqd = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    nsqd.pub(topic, b"before")
    nsqlookupd.wait_for_producer(nsqd, topic)
    return nsqd


async def reader_through(nsqlookupd, topic, got, **options):
    """A Reader that found its nsqd through ``nsqlookupd`` and consumed ``before`` into ``got``."""
    reader = nsq.Reader(topic, "c", lambda m: got.append(m.body) or True,
                        lookupd_http_addresses=[nsqlookupd.http_address], **{**FAST, **options})
    await until(lambda: got == [b"before"])
    return reader


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

    assert run(main(), timeout=60) == [len(body)]
    stats = nsqd.channel_stats("large", "c")
    assert stats["depth"] == 0 and stats["in_flight_count"] == 0 and stats["requeue_count"] == 0


def test_a_lookupd_restart_costs_no_consumption(nsqd_factory, nsqlookupd):
    # a restarted nsqlookupd answers 404 TOPIC_NOT_FOUND until nsqd registers again at its next
    # ping (every 15 s); the Reader must keep consuming from the nsqd it is connected to
    nsqd = nsqd_listed_by(nsqlookupd, nsqd_factory, "lookupd_restart")

    async def main():
        got = []
        reader = await reader_through(nsqlookupd, "lookupd_restart", got, lookupd_poll_interval=0.05)
        conn = reader.conns[nsqd.tcp_address]
        empty_polls = []
        apply = reader._discovery._apply

        def spy(result, *args, **kwargs):
            if result.complete:
                empty_polls.append(not result.producers)
            apply(result, *args, **kwargs)

        reader._discovery._apply = spy
        for _ in range(3):  # nsqd may register again before the polls saw the restart: again
            await asyncio.to_thread(nsqlookupd.stop)
            await asyncio.to_thread(nsqlookupd.start)
            empty_polls.clear()
            await until(lambda: len(empty_polls) >= 5, timeout=20)
            if all(empty_polls[:5]):
                break
        assert all(empty_polls[:5]), "nsqd registered again before five polls each time"
        assert reader.conns.get(nsqd.tcp_address) is conn and conn.connected()
        await asyncio.to_thread(nsqd.pub, "lookupd_restart", b"after")  # an existing topic: no REGISTER
        await until(lambda: got == [b"before", b"after"], timeout=3)
        await reader.close()

    run(main(), timeout=60)


def test_a_restarted_nsqd_found_through_lookupd_is_consumed_again_within_seconds(nsqd_factory,
                                                                                 nsqlookupd):
    # a stopping nsqd unregisters from lookupd: the re-query that follows the lost connection
    # finds nothing, and go-nsq (and this Reader before) waited for the next poll (60 s here)
    nsqd = nsqd_listed_by(nsqlookupd, nsqd_factory, "nsqd_restart")

    def listed():
        return any(node.get("tcp_port") == nsqd.tcp_port for node in nsqlookupd.nodes())

    async def main():
        got = []
        reader = await reader_through(nsqlookupd, "nsqd_restart", got, lookupd_poll_interval=60,
                                      reconnect_interval=0.2, max_reconnect_interval=1.0)
        await asyncio.to_thread(nsqd.stop)
        await until(lambda: not reader.conns and not listed())
        await asyncio.sleep(1.5)  # nsqd stays down longer than the first reconnect delays
        await asyncio.to_thread(nsqd.start)
        await asyncio.to_thread(nsqd.pub, "nsqd_restart", b"after")
        await until(lambda: got == [b"before", b"after"], timeout=10)
        await reader.close()

    run(main(), timeout=60)
