"""A typed program using nsqcli.lib as users do: it must check clean under ``mypy --strict``.

Never run, only type-checked (tests/test_types.py). Each use below is public API that a user's type
checker reads from our annotations (the package ships ``py.typed``).
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Sequence

import nsqcli.lib as nsq


def sync_handler(message: nsq.Message) -> bool:
    """True: FIN, False: REQ."""
    message.touch()
    return len(message.body) > 0 and message.id != b""


async def async_handler(message: nsq.Message) -> bool:
    await asyncio.sleep(0)
    return message.attempts < 3 and message.timestamp > 0


def answers_later(message: nsq.Message) -> None:
    message.enable_async()
    if message.is_async() and not message.has_responded():
        asyncio.get_running_loop().call_later(1.0, message.finish)


def on_published(conn: nsq.AsyncConn | None, data: bytes | nsq.Error) -> None:
    if isinstance(data, nsq.Error):
        print("publish failed on", conn, data)


class CountingReader(nsq.Reader):
    """The pynsq way of customising a Reader: override its hooks."""

    handled = 0

    def process_message(self, message: nsq.Message) -> bool:
        self.handled += 1
        return True

    def giving_up(self, message: nsq.Message) -> None:
        print("giving up on", message.id, message.nsqd_address)

    def heartbeat(self, conn: nsq.AsyncConn) -> None:
        print("heartbeat from", conn.id, conn.rdy, conn.in_flight)


async def consume() -> None:
    reader = nsq.Reader("topic", "channel", message_handler=sync_handler,
                        nsqd_tcp_addresses=["127.0.0.1:4150", ("::1", 4150)], max_in_flight=10)
    other = nsq.Reader("topic", "other", async_handler, lookupd_http_addresses="http://127.0.0.1:4161",
                       backoff_strategy="full_jitter", tls_v1=False, heartbeat_interval=10)
    later = CountingReader("topic", "later", nsqd_tcp_addresses="127.0.0.1:4150")
    later.set_message_handler(answers_later)
    reader.set_max_in_flight(0)
    print(reader.conns.get("127.0.0.1:4150"), reader.total_rdy, reader.is_starved())
    conn = reader.connect_to_nsqd("127.0.0.1", 4151)
    if conn is not None:
        await conn.wait_ready(timeout=1.0)
    await reader.query_lookupd()
    await reader.close()
    await other.close()
    later.close()  # pynsq style: closes in the background

    async with nsq.Reader("topic", "iterated", nsqd_tcp_addresses="127.0.0.1:4150") as iterated:
        async for message in iterated.messages():
            if message.attempts > 5:
                message.requeue(delay=1.5, backoff=False)
            elif not message.body:
                await message.req(time_ms=500)
            else:
                await message.fin()
        async with iterated.messages() as stream:
            first: nsq.Message = await stream.__anext__()
            first.finish()
        kept: nsq.MessageStream = iterated.messages()  # the public name of what it returns
        await kept.aclose()


async def produce() -> None:
    writer = nsq.Writer(["127.0.0.1:4150"], reconnect_interval=5.0, connect_timeout=2.0,
                        snappy=True, auth_secret=b"secret", tls_options={"ca_certs": "ca.pem"})
    answer: bytes = await writer.pub("topic", b"body")
    writer.pub("topic", b"x", callback=on_published)
    writer.pub("topic", "text is sent as UTF-8", on_published)
    writer.pub("topic", b"y", callback=lambda conn, data: print(conn, data))
    await writer.mpub("topic", [b"a", bytearray(b"b"), "c"])
    await writer.mpub("topic", b"a lone body")
    await writer.dpub("topic", 1000, b"later", on_published)
    try:
        await writer.pub("topic", b"z")
    except nsq.NSQError as error:
        print(error.code, error.description)
    except nsq.ConnectionClosedError:
        pass
    print(answer, writer.conns)
    await writer.close()
    async with nsq.Writer("127.0.0.1:4150") as scoped:
        await scoped.pub("topic", memoryview(b"view"))
    await nsq.close_all(timeout=5.0)


async def publish_in_bulk() -> None:
    waiting: dict[int, nsq.Message] = {}

    def acknowledged(numbers: Sequence[int]) -> None:
        for number in numbers:
            waiting.pop(number).finish()

    async def bodies() -> AsyncIterator[bytes]:
        yield b"one"

    async with nsq.Publisher("topic", ["127.0.0.1:4150"], mode="fan-out", batch_size=500,
                             retry_timeout=10.0, on_acknowledged=acknowledged,
                             on_given_up=lambda numbers: print(list(numbers)),
                             log=print, snappy=True) as publisher:
        numbers: range = await publisher.publish([b"a", "b", bytearray(b"c")])
        one: range = await publisher.publish(b"d")
        report: nsq.PublishReport = await publisher.publish_all(bodies())
        await publisher.publish_all([b"e", [b"f", b"g"]])
        print(numbers, one, report.acknowledged, report.given_up, report.ok, publisher.stopped)
    try:
        report = await nsq.Publisher("topic", "127.0.0.1:4150").close()
    except nsq.RecordTooLargeError as error:
        print(error.number, error.size, error.limit, error.report)
    except nsq.PublishError as error:
        print(error.message)
    for number, body in report.failed:
        print(number + 1, body.decode())


def blocking() -> None:
    conn = nsq.SyncConn(timeout=1.0)
    conn.connect("127.0.0.1", 4150)
    conn.send(nsq.identify({"client_id": "typed"}))
    frame_type, data = nsq.unpack_response(conn.read_response())
    if frame_type == nsq.FRAME_TYPE_RESPONSE:
        conn.send(nsq.pub("topic", data) + nsq.mpub("topic", [b"a"]) + nsq.dpub("topic", 10, b"b"))
    conn.close()
    assert nsq.valid_topic_name("topic") and nsq.valid_channel_name("channel#ephemeral")


def main() -> None:
    nsq.Reader("topic", "channel", sync_handler, lookupd_http_addresses=["127.0.0.1:4161"])
    nsq.Writer("127.0.0.1:4150")
    nsq.run()
    nsq.run(drain_timeout=None)
