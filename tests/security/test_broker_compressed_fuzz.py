"""The embedded nsqd fed hostile commands inside a valid snappy/deflate stream (the gap left by
tests/broker/test_nsqd_fuzz.py, whose random bytes after an upgrade are rarely valid compressed
data), sent after the upgrade or in the same write as the IDENTIFY that starts it: answers, error
frames or a closed connection, never an exception on the loop or an error logged as a bug, and
the broker keeps serving. ``NSQCLI_FUZZ_EXAMPLES`` scales the run."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
from broker_probe import hang_up_and_check_alive
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsqcli.broker.nsqd import NSQD, NSQDOptions
from nsqcli.lib.protocol import commands as cmd
from nsqcli.lib.protocol.compression import make_codec

pytestmark = pytest.mark.embedded_only(
    "fuzzes the embedded nsqd's own loop for exceptions and bugs it logs")
pytest.importorskip("cramjam")

EXAMPLES = max(20, int(os.environ.get("NSQCLI_FUZZ_EXAMPLES", "300")) // 3)

PIECES = [
    cmd.subscribe("t", "c"), cmd.ready(3), cmd.pub("t", b"x"), cmd.mpub("t", [b"a", b"b"]),
    cmd.dpub("t", 5, b"d"), cmd.finish(b"0" * 16), cmd.requeue(b"0" * 16, 10), cmd.touch(b"0" * 16),
    cmd.nop(), cmd.cls(), cmd.auth(b"s"), cmd.identify({"snappy": True}),
    b"PUB t\n\xff\xff\xff\xff", b"MPUB t\n\x00\x00\x00\x08\x00\x00\x00\x09", b"\n",
    b"RDY 99999999999999999999\n", b"SUB \xff\xfe c\n", b"IDENTIFY\n\x00\x00\x00\x03[[[",
]


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def exchange(kind: str, same_write: bool, chunks: list[bytes]) -> list:
    problems: list = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: problems.append(context))
    nsqd = NSQD(NSQDOptions())
    await nsqd.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", nsqd.tcp_port)
        identify = b"  V2" + cmd.identify({kind: True, "deflate_level": 6,
                                           "feature_negotiation": True})
        codec = make_codec(kind, 6)
        payload = b"".join(codec.compress(chunk) for chunk in chunks)  # one flush per write
        if same_write:
            writer.write(identify + payload)
        else:
            writer.write(identify)
            size = int.from_bytes(await asyncio.wait_for(reader.readexactly(4), 2), "big")
            await asyncio.wait_for(reader.readexactly(size), 2)  # the JSON IDENTIFY response
            writer.write(payload)
        await hang_up_and_check_alive(reader, writer, nsqd.tcp_port)
    finally:
        await nsqd.stop()
    return problems


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["snappy", "deflate"]), st.booleans(),
       st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=40)), max_size=10))
def test_hostile_commands_inside_compression(kind, same_write, chunks):
    errors = _Errors()
    broker_log = logging.getLogger("nsqcli.broker")
    broker_log.addHandler(errors)
    try:
        assert asyncio.run(exchange(kind, same_write, chunks)) == []
    finally:
        broker_log.removeHandler(errors)
    assert [r.getMessage() for r in errors.records] == []
