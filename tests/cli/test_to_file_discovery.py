"""nsq-to-file's lookupd /topics queries (--topic-pattern / no --topic), against tiny fake
lookupds: what they ask, what a failure says, and that a stop mid-query leaves no socket."""

import asyncio
import json

import pytest

from nsqcli.cli.console import Console
from nsqcli.cli.options import ClientSettings
from nsqcli.cli.runner import Shutdown
from nsqcli.lib.lookupd import ACCEPT_HEADER, LookupdError
from nsqcli.to_file.command import ToFile, ToFileConfig
from nsqcli.to_file.topic_discovery import query_topics


class FakeLookupd:
    """Answers the first ``answers`` /topics queries with ``(status, body)``; never answers the
    later ones (until the client closes its end, which it records)."""

    def __init__(self, status=200, body=b'{"topics": []}', answers=1_000_000):
        self.status, self.body, self.answers = status, body, answers
        self.requests = []
        self.hanging = asyncio.Event()  # a query is waiting for an answer that never comes
        self.abandoned = asyncio.Event()  # ... and its client closed that connection

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        self.requests.append(head)
        if len(self.requests) > self.answers:
            self.hanging.set()
            await reader.read()  # b"" once the client's socket is closed
            self.abandoned.set()
        else:
            writer.write(b"HTTP/1.0 %d X\r\nContent-Length: %d\r\n\r\n%s"
                         % (self.status, len(self.body), self.body))
        writer.close()

    async def close(self):
        self.server.close()
        await self.server.wait_closed()


def test_the_union_of_every_lookupd_sorted_asking_for_v1_answers():
    async def main():
        one = FakeLookupd(body=json.dumps({"topics": ["b", "a"]}).encode())
        two = FakeLookupd(body=json.dumps({"status_code": 200, "status_txt": "OK",
                                           "data": {"topics": ["c", "a"]}}).encode())
        addresses = [await one.start(), "http://" + await two.start() + "/?x=1"]
        try:
            assert await query_topics(addresses) == ["a", "b", "c"]
        finally:
            await one.close()
            await two.close()
        assert one.requests[0].startswith("GET /topics HTTP/1.")
        assert two.requests[0].startswith("GET /topics?x=1 HTTP/1.")
        assert f"Accept: {ACCEPT_HEADER}\r\n" in one.requests[0]

    asyncio.run(main())


@pytest.mark.parametrize("status, body, reason", [
    (500, b'{"message": "INTERNAL_ERROR"}', "HTTP 500"),
    (200, b"<html>", "HTTP 200 response is not JSON"),
])
def test_a_failing_lookupd_is_named(status, body, reason):
    async def main():
        good, bad = FakeLookupd(), FakeLookupd(status, body)
        addresses = [await good.start(), await bad.start()]
        try:
            with pytest.raises(LookupdError) as caught:
                await query_topics(addresses)
        finally:
            await good.close()
            await bad.close()
        assert str(caught.value).startswith(f"lookupd {addresses[1]}: {reason}")

    asyncio.run(main())


def test_a_lookupd_that_does_not_answer_times_out():
    async def main():
        silent = FakeLookupd(answers=0)
        address = await silent.start()
        try:
            with pytest.raises(LookupdError, match=f"^lookupd {address}: Timeout during request"):
                await query_topics([address], request_timeout=0.2)
            await asyncio.wait_for(silent.abandoned.wait(), 5)
        finally:
            await silent.close()

    asyncio.run(main())


def test_a_cancelled_query_closes_its_socket_at_once():
    # nsq-to-file stopping mid-refresh cancels the query: its connection must end then, not
    # when the lookupd answers or the garbage collector finds the socket (a ResourceWarning)
    async def main():
        silent = FakeLookupd(answers=0)
        address = await silent.start()
        query = asyncio.ensure_future(query_topics([address], request_timeout=60))
        try:
            await asyncio.wait_for(silent.hanging.wait(), 5)
            query.cancel()
            await asyncio.wait_for(silent.abandoned.wait(), 2)
        finally:
            await silent.close()
        assert query.cancelled()

    asyncio.run(main())


def test_a_stop_during_a_topic_refresh_ends_its_query(tmp_path):
    # the first /topics answers (no topics yet); a refresh then hangs until nsq-to-file stops
    async def main():
        lookupd = FakeLookupd(answers=1)
        address = await lookupd.start()
        config = ToFileConfig(topics=[], output_dir=str(tmp_path), topic_refresh=0.05,
                              http_request_timeout=60)
        tool = ToFile(config, ClientSettings([], [address]), Console("nsq-to-file"))
        shutdown = Shutdown()
        running = asyncio.ensure_future(tool.run(shutdown))
        try:
            await asyncio.wait_for(lookupd.hanging.wait(), 10)
            shutdown.request()
            await asyncio.wait_for(running, 10)
            await asyncio.wait_for(lookupd.abandoned.wait(), 2)
        finally:
            running.cancel()
            await lookupd.close()
        assert len(lookupd.requests) == 2  # one refresh at a time, not one per tick

    asyncio.run(main())
