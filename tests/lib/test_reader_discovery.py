"""Reader discovery through lookupd (canned tornado HTTP lookupds + scripted fake nsqds)."""

import asyncio
import socket

import pytest
from fake_nsqd import FakeNSQD
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

import nsqcli.lib as nsq
from nsqcli.lib.lookupd import ACCEPT_HEADER

FAST = dict(backoff_multiplier=0.05, rdy_redistribute_interval=0.05, reconnect_interval=0.05,
            close_timeout=2.0, lookupd_poll_jitter=0.0)


def run(coro):
    asyncio.run(asyncio.wait_for(coro, 20))


class Listing(RequestHandler):
    def initialize(self, lookupd):
        self.lookupd = lookupd

    def get(self):
        lookupd = self.lookupd
        lookupd.requests.append((self.get_query_argument("topic"), self.request.headers.get("Accept")))
        lookupd.changed.set()
        if lookupd.status != 200:
            self.set_status(lookupd.status)
            self.write({"message": "INTERNAL_ERROR"})
            return
        self.write({"channels": [], "producers": [
            {"broadcast_address": fake.host, "tcp_port": fake.port, "http_port": 1, "version": "1.3.0"}
            for fake in lookupd.producers]})


class FakeLookupd:
    """Lists ``producers`` (fake nsqds) for any topic; records every /lookup request."""

    def __init__(self, *producers):
        self.producers = list(producers)
        self.requests = []
        self.status = 200
        self.changed = asyncio.Event()
        sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self.address = f"127.0.0.1:{sockets[0].getsockname()[1]}"
        self.server = HTTPServer(Application([(r"/lookup", Listing, {"lookupd": self})]))
        self.server.add_sockets(sockets)

    async def wait_requests(self, count, timeout=5.0):
        async def until():
            while len(self.requests) < count:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(until(), timeout)

    def stop(self):
        self.server.stop()


def test_union_of_producers_from_every_lookupd():
    async def main():
        async with FakeNSQD() as one, FakeNSQD() as two:
            first, second = FakeLookupd(one), FakeLookupd(one, two)
            reader = nsq.Reader("t", "c", lambda m: True, max_in_flight=10,
                                lookupd_http_addresses=[first.address, "http://" + second.address + "/"],
                                **FAST)
            await one.wait_for("RDY")
            await two.wait_for("RDY")
            await asyncio.sleep(0.1)
            assert reader.total_rdy == 10 and len(reader.conns) == 2
            assert len(one.peers) == 1  # listed twice, connected once
            for lookupd in (first, second):
                assert lookupd.requests[0] == ("t", ACCEPT_HEADER)
            await reader.close()
            first.stop()
            second.stop()

    run(main())


def test_nsqd_no_longer_listed_is_dropped_only_once_idle():
    async def main():
        async with FakeNSQD() as one, FakeNSQD() as two:
            lookupd = FakeLookupd(one, two)
            held = []

            def handler(message):
                message.enable_async()
                held.append(message)

            reader = nsq.Reader("t", "c", handler, max_in_flight=4, lookupd_poll_interval=0.05,
                                lookupd_http_addresses=lookupd.address, **FAST)
            reader._discovery.min_gone_seconds = 0.2  # instead of 30 s
            await one.wait_for("RDY")
            await two.wait_for("RDY")
            two.peers[0].send_message(b"in flight")
            await two.wait_until(lambda: held)
            lookupd.producers = [one]
            await lookupd.wait_requests(len(lookupd.requests) + 8)  # 8 polls, > 0.2 s
            # a message in flight: not idle, kept (it even keeps its RDY)
            assert "CLS" not in two.transcript and not two.peers[0].closed
            assert sorted(reader.conns) == sorted([one.address, two.address])
            held[0].finish()
            await two.wait_for("CLS")  # idle now: dropped at the next poll
            await two.wait_until(lambda: two.peers[0].closed)
            assert two.transcript[-3:] == ["FIN " + held[0].id.decode(), "RDY 0", "CLS"]
            await one.wait_for("RDY 4")  # the remaining nsqd gets the whole budget
            await lookupd.wait_requests(len(lookupd.requests) + 4)
            assert len(two.peers) == 1  # not reconnected: lookupd does not list it
            assert list(reader.conns) == [one.address]
            await reader.close()
            lookupd.stop()

    run(main())


def test_a_restarted_lookupd_answering_nothing_costs_no_connection():
    # a restarted nsqlookupd knows no producer until each nsqd pings it again (every 15 s):
    # its empty answers must not close working connections, idle or not
    async def main():
        async with FakeNSQD() as fake:
            lookupd = FakeLookupd(fake)
            reader = nsq.Reader("t", "c", lambda m: True, lookupd_poll_interval=0.05,
                                lookupd_http_addresses=lookupd.address, **FAST)
            await fake.wait_for("RDY 1")
            lookupd.producers = []  # 10 empty answers, 0.5 s
            await lookupd.wait_requests(len(lookupd.requests) + 10)
            assert list(reader.conns) == [fake.address] and "CLS" not in fake.transcript
            fake.peers[0].send_message(b"still consumed")
            await fake.wait_for("FIN")
            assert len(fake.peers) == 1
            await reader.close()
            lookupd.stop()

    run(main())


def test_closed_connection_triggers_an_immediate_lookupd_query():
    async def main():
        async with FakeNSQD() as fake:
            lookupd = FakeLookupd(fake)
            reader = nsq.Reader("t", "c", lambda m: True, lookupd_poll_interval=60,
                                lookupd_http_addresses=lookupd.address, **FAST)
            await fake.wait_for("RDY")
            await lookupd.wait_requests(1)
            await asyncio.sleep(0.1)
            before = len(lookupd.requests)
            fake.peers[0].close()
            await lookupd.wait_requests(before + 1, timeout=2)
            # still listed: reconnected once its reconnect delay allows
            await fake.wait_for("RDY 1", 2, timeout=3)
            await reader.close()
            lookupd.stop()

    run(main())


def test_nsqds_are_kept_when_a_lookupd_fails():
    async def main():
        async with FakeNSQD() as one, FakeNSQD() as two:
            good, bad = FakeLookupd(one), FakeLookupd(one, two)
            reader = nsq.Reader("t", "c", lambda m: True, max_in_flight=2, lookupd_poll_interval=0.1,
                                lookupd_http_addresses=[good.address, bad.address], **FAST)
            await two.wait_for("RDY")
            bad.status = 500
            await bad.wait_requests(len(bad.requests) + 3)
            assert len(reader.conns) == 2 and "CLS" not in two.transcript
            await reader.close()
            good.stop()
            bad.stop()

    run(main())


def test_query_lookupd_is_awaitable():
    async def main():
        async with FakeNSQD() as fake:
            lookupd = FakeLookupd()
            reader = nsq.Reader("t", "c", lambda m: True, lookupd_poll_interval=60,
                                lookupd_http_addresses=lookupd.address, **FAST)
            await lookupd.wait_requests(1)
            lookupd.producers = [fake]
            await reader.query_lookupd()
            await fake.wait_for("RDY 1")
            await reader.close()
            assert await asyncio.wait_for(asyncio.ensure_future(reader.query_lookupd()), 1) is None
            lookupd.stop()

    run(main())


class StubReader:
    """What Discovery needs from a Reader, recording the calls; ``busy`` addresses are not idle."""

    topic, name = "t", "t:c"

    def __init__(self):
        self.connects, self.retired, self.busy = [], [], set()

    def _connect(self, host, port):
        self.connects.append((host, port))

    def _retire(self, address):
        self.retired.append(address)

    def _idle_since(self, address, since):
        return address not in self.busy


class FixedRandom:
    def __init__(self, value):
        self.value = value

    def random(self):
        return self.value

    def uniform(self, low, high):
        return low + (high - low) * self.value


def make_discovery(reader, direct=(), lookupd=(), **kwargs):
    from nsqcli.lib.reader_discovery import Discovery

    options = dict(poll_interval=10.0, poll_jitter=0.4, connect_timeout=1, request_timeout=1,
                   reconnect_interval=1.0, max_reconnect_interval=8.0, rng=FixedRandom(0.5))
    options.update(kwargs)
    return Discovery(reader, list(direct), list(lookupd), **options)


def test_first_poll_is_delayed_by_jitter():
    async def main():
        lookupd = FakeLookupd()
        discovery = make_discovery(StubReader(), lookupd=[lookupd.address])
        loop = asyncio.get_running_loop()
        discovery.start()
        assert discovery._poll_timer.when() - loop.time() == pytest.approx(10.0 * 0.4 * 0.5, abs=0.05)
        await lookupd.wait_requests(1)  # plus one query at once
        discovery.stop()
        lookupd.stop()

    run(main())


def test_direct_reconnect_delays_grow_exponentially_and_reset_on_success():
    async def main():
        reader = StubReader()
        discovery = make_discovery(reader, direct=[("127.0.0.1", 4150)], rng=FixedRandom(0.5))
        loop = asyncio.get_running_loop()
        discovery.start()
        assert reader.connects == [("127.0.0.1", 4150)]
        delays = []
        for _ in range(6):
            discovery.connection_closed("127.0.0.1", 4150)
            delays.append(round(discovery._not_before["127.0.0.1:4150"] - loop.time(), 1))
        assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]  # FixedRandom(0.5): jitter factor 1.0
        assert len(discovery._timers) == 6
        discovery.connection_succeeded("127.0.0.1:4150")
        discovery.connection_closed("127.0.0.1", 4150)
        assert round(discovery._not_before["127.0.0.1:4150"] - loop.time(), 1) == 1.0
        discovery.stop()
        assert not discovery._timers

    run(main())


def test_a_known_nsqd_is_forgotten_only_after_several_complete_periodic_polls_and_when_idle():
    from nsqcli.lib.lookupd import LookupResult
    from nsqcli.lib.reader_discovery import MISSING_POLLS

    a, b, c, d = (("10.0.0.%d" % n, 4150) for n in (1, 2, 3, 9))
    B, C = "10.0.0.2:4150", "10.0.0.3:4150"

    async def main():
        reader = StubReader()
        discovery = make_discovery(reader, direct=[d])
        discovery.min_gone_seconds = 0.0
        discovery._apply(LookupResult([a, b, c, d], answered=2), periodic=True)
        assert reader.connects == [a, b, c, d]
        assert sorted(discovery.discovered) == ["10.0.0.1:4150", B, C]  # not the configured one
        reader.busy.add(C)
        for _ in range(MISSING_POLLS - 1):
            discovery._apply(LookupResult([a], answered=2), periodic=True)
        # answers that do not count: a failed lookupd, a re-query after a disconnect
        discovery._apply(LookupResult([a], answered=1, failed=1), periodic=True)
        discovery._apply(LookupResult([a], answered=2))
        assert reader.retired == []
        discovery._apply(LookupResult([a], answered=2), periodic=True)
        assert reader.retired == [B]  # the third complete periodic poll; never the busy C
        assert B not in discovery.discovered and C in discovery.discovered
        for _ in range(5):
            discovery._apply(LookupResult([a], answered=2), periodic=True)
        assert reader.retired == [B]  # C keeps delivering: kept
        discovery._apply(LookupResult([a, c], answered=1))  # listed again: the count starts over
        reader.busy.clear()
        for _ in range(MISSING_POLLS - 1):
            discovery._apply(LookupResult([a], answered=2), periodic=True)
        assert reader.retired == [B]
        discovery._apply(LookupResult([a], answered=2), periodic=True)
        assert reader.retired == [B, C]
        # an address in reconnect backoff is not retried before its time
        discovery.connection_closed(*a)
        reader.connects.clear()
        discovery._apply(LookupResult([a], answered=1))
        assert reader.connects == []
        discovery.stop()

    run(main())


def test_forgetting_needs_min_gone_seconds_too():
    from nsqcli.lib.lookupd import LookupResult

    async def main():
        reader = StubReader()
        discovery = make_discovery(reader)  # MIN_GONE_SECONDS: 30 s
        discovery._apply(LookupResult([("10.0.0.2", 4150)], answered=1), periodic=True)
        for _ in range(10):  # ten fast polls while a restarted lookupd knows nobody yet
            discovery._apply(LookupResult([], answered=1), periodic=True)
        assert reader.retired == []
        discovery.stop()

    run(main())


def test_a_dropped_nsqd_found_through_lookupd_is_retried_directly_until_forgotten():
    from nsqcli.lib.lookupd import LookupResult

    async def main():
        lookupd = FakeLookupd()  # lists nothing: the nsqd unregistered while it restarts
        reader = StubReader()
        discovery = make_discovery(reader, lookupd=[lookupd.address], reconnect_interval=0.05,
                                   max_reconnect_interval=0.1)
        discovery._apply(LookupResult([("10.0.0.2", 4150)], answered=1))
        reader.connects.clear()
        for attempt in range(1, 4):  # every attempt fails: retried with backoff all the same
            discovery.connection_closed("10.0.0.2", 4150, "refused")
            deadline = asyncio.get_running_loop().time() + 2
            while len(reader.connects) < attempt:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
        assert reader.connects == [("10.0.0.2", 4150)] * 3
        await lookupd.wait_requests(3)  # each close re-queried lookupd too
        discovery._forget("10.0.0.2:4150")
        discovery.connection_closed("10.0.0.2", 4150)
        assert not discovery._timers  # forgotten: no more retries
        discovery.stop()
        lookupd.stop()

    run(main())
