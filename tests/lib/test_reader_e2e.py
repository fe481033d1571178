"""Reader end to end through an nsqd (the embedded broker, or the real one via NSQCLI_TEST_NSQD)."""

import asyncio
import functools

import pytest
from auth_server import AuthServer

import nsqcli.lib as nsq

FAST = dict(backoff_multiplier=0.01, rdy_redistribute_interval=0.1, reconnect_interval=0.05,
            close_timeout=5.0, lookupd_poll_jitter=0.0)


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(predicate, timeout=10.0, interval=0.02):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(interval)


def test_consumes_everything_and_leaves_the_channel_empty(nsqd):
    bodies = [b"m%d" % i for i in range(500)]
    nsqd.mpub("e2e", bodies)

    async def main():
        got = []
        reader = nsq.Reader("e2e", "c", lambda m: got.append(m.body) or True,
                            nsqd_tcp_addresses=nsqd.tcp_address, max_in_flight=50, **FAST)
        await until(lambda: len(got) == len(bodies))
        await reader.close()
        return got

    assert sorted(run(main())) == sorted(bodies)
    stats = nsqd.channel_stats("e2e", "c")
    assert stats["depth"] == 0 and stats["in_flight_count"] == 0 and stats["requeue_count"] == 0
    assert stats["message_count"] == len(bodies)


def test_two_nsqds_found_through_lookupd(nsqd_factory, nsqlookupd):
    first = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    second = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    first.pub("spread", b"from-first")
    second.pub("spread", b"from-second")
    nsqlookupd.wait_for_producer(first, "spread")
    nsqlookupd.wait_for_producer(second, "spread")

    async def main():
        got = []
        reader = nsq.Reader("spread", "c", lambda m: got.append(m.body) or True, max_in_flight=10,
                            lookupd_http_addresses=[nsqlookupd.http_address], lookupd_poll_interval=0.2,
                            **FAST)
        await until(lambda: len(got) == 2)
        assert len(reader.conns) == 2 and reader.total_rdy == 10
        await reader.close()
        return got

    assert sorted(run(main())) == [b"from-first", b"from-second"]


def test_coroutine_handler_requeues_then_gives_up(nsqd):
    nsqd.pub("tries", b"doomed")
    nsqd.pub("tries", b"fine")
    attempts, given_up = [], []

    class Reader(nsq.Reader):
        def giving_up(self, message):
            given_up.append((message.body, message.attempts))

    async def handler(message):
        await asyncio.sleep(0)
        attempts.append((message.body, message.attempts))
        return message.body == b"fine"

    async def main():
        reader = Reader("tries", "c", handler, nsqd_tcp_addresses=nsqd.tcp_address, max_tries=2,
                        max_in_flight=5, requeue_delay=0, **FAST)
        await until(lambda: given_up)
        await reader.close()

    run(main())
    assert given_up == [(b"doomed", 3)]
    assert sorted(attempts) == [(b"doomed", 1), (b"doomed", 2), (b"fine", 1)]
    stats = nsqd.channel_stats("tries", "c")
    assert stats["depth"] == 0 and stats["requeue_count"] == 2


def test_close_waits_for_in_flight_messages_to_be_answered(nsqd):
    nsqd.mpub("drain", [b"1", b"2", b"3"])

    async def main():
        held = []

        def handler(message):
            message.enable_async()
            held.append(message)

        reader = nsq.Reader("drain", "c", handler, nsqd_tcp_addresses=nsqd.tcp_address,
                            max_in_flight=3, **FAST)
        await until(lambda: len(held) == 3)
        closing = asyncio.ensure_future(reader.close())
        await asyncio.sleep(0.2)
        assert not closing.done()
        for message in held:
            message.finish()
        await closing

    run(main())
    stats = nsqd.channel_stats("drain", "c")
    assert stats["depth"] == 0 and stats["in_flight_count"] == 0 and stats["requeue_count"] == 0
    assert stats["client_count"] == 0


def test_reconnects_to_a_restarted_nsqd(nsqd):
    async def main():
        got = []
        reader = nsq.Reader("restart", "c", lambda m: got.append(m.body) or True,
                            nsqd_tcp_addresses=nsqd.tcp_address, max_in_flight=5, **FAST)
        nsqd.pub("restart", b"before")
        await until(lambda: got == [b"before"])
        await asyncio.to_thread(nsqd.stop)
        await until(lambda: not reader.conns)
        await asyncio.to_thread(nsqd.start)
        await until(lambda: reader.conns, timeout=15)
        await asyncio.to_thread(nsqd.pub, "restart", b"after")
        await until(lambda: got == [b"before", b"after"])
        await reader.close()

    run(main())


@pytest.mark.parametrize("options", [
    {"snappy": True},
    {"deflate": True, "deflate_level": 3},
    {"tls_v1": True},
    {"tls_v1": True, "snappy": True},
    {"tls_v1": True, "deflate": True},
])
def test_tls_and_compression(nsqd_factory, tls_files, options):
    server_options = {}
    conn_options = dict(options)
    if options.get("tls_v1", False):
        cert, key, ca, _ = tls_files
        server_options = {"tls_cert": cert, "tls_key": key}
        conn_options["tls_options"] = {"ca_certs": ca}
    nsqd = nsqd_factory(**server_options)
    bodies = [b"x" * 2000 + b"%d" % i for i in range(200)]
    nsqd.mpub("secure", bodies)

    async def main():
        got = []
        reader = nsq.Reader("secure", "c", lambda m: got.append(m.body) or True,
                            nsqd_tcp_addresses=nsqd.tcp_address, max_in_flight=20, **FAST,
                            **conn_options)
        await until(lambda: len(got) == len(bodies))
        await reader.close()
        return got

    assert sorted(run(main())) == sorted(bodies)
    assert nsqd.channel_stats("secure", "c")["depth"] == 0


def test_is_starved_batching_pattern_from_pynsq_docs(nsqd):
    """pynsq's documented batching: buffer with enable_async, flush when is_starved()."""
    nsqd.mpub("batch", [b"%d" % i for i in range(95)])
    batches = []

    async def main():
        buffered = []

        def handler(message, reader):
            message.enable_async()
            buffered.append(message)
            if reader.is_starved():
                batches.append(len(buffered))
                for msg in buffered:
                    msg.finish()
                buffered.clear()

        reader = nsq.Reader("batch", "c", nsqd_tcp_addresses=nsqd.tcp_address, max_in_flight=10, **FAST)
        reader.set_message_handler(functools.partial(handler, reader=reader))
        # every message delivered (nsqd flushes its output buffer every 250 ms: the last few
        # may come that much later), then the tail that never filled a batch
        await until(lambda: sum(batches) + len(buffered) == 95)
        for msg in buffered:
            msg.finish()
        buffered.clear()
        await reader.close()

    run(main())
    assert batches and max(batches) <= 10 and min(batches) >= 9  # 0.85 x RDY 10 -> batches of 9-10
    assert nsqd.channel_stats("batch", "c")["depth"] == 0


def test_auth_secret_reaches_every_connection(nsqd_factory):
    """nsqd's --auth-http-address contract: GET /auth?secret=... -> authorizations."""
    server = AuthServer(secret="s3cret")
    try:
        nsqd = nsqd_factory(auth_http_address=server.address)
        nsqd.pub("authed", b"secret message")

        async def main():
            got = []
            reader = nsq.Reader("authed", "c", lambda m: got.append(m.body) or True,
                                nsqd_tcp_addresses=nsqd.tcp_address, auth_secret="s3cret", **FAST)
            await until(lambda: got)
            await reader.close()
            return got

        assert run(main()) == [b"secret message"]
        assert "s3cret" in server.secrets
    finally:
        server.close()
