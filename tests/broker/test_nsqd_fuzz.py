"""Hostile bytes never break the embedded nsqd: every input ends in answers, error frames or a
closed connection, never in an exception on the broker's loop."""

from __future__ import annotations

import asyncio

import pytest
from broker_probe import hang_up_and_check_alive
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsqcli.broker.nsqd import NSQD, NSQDOptions
from nsqcli.lib.protocol import commands as cmd

pytestmark = pytest.mark.embedded_only(
    "fuzzes the embedded nsqd's own loop for exceptions (a real nsqd has no Python loop to watch)")

PIECES = [
    cmd.identify({"feature_negotiation": True, "heartbeat_interval": 1000}),
    cmd.identify({"deflate": True, "feature_negotiation": True}), cmd.subscribe("t", "c"),
    cmd.ready(3), cmd.pub("t", b"x"), cmd.mpub("t", [b"a", b"b"]), cmd.dpub("t", 5, b"d"),
    cmd.finish(b"0" * 16), cmd.requeue(b"0" * 16, 10), cmd.touch(b"0" * 16), cmd.nop(),
    cmd.cls(), cmd.auth(b"s"), b"PUB t\n\xff\xff\xff\xff", b"MPUB t\n\x00\x00\x00\x08\x00\x00\x00\x09",
    b"\n", b"RDY 99999999999999999999\n", b"SUB \xff\xfe c\n",
]


async def exchange(chunks: list[bytes]) -> list:
    errors: list = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    nsqd = NSQD(NSQDOptions())
    await nsqd.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", nsqd.tcp_port)
        writer.write(b"  V2")
        for chunk in chunks:
            writer.write(chunk)
        await hang_up_and_check_alive(reader, writer, nsqd.tcp_port)
    finally:
        await nsqd.stop()
    return errors


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=40)), max_size=12))
def test_hostile_input_never_raises_on_the_loop(chunks):
    assert asyncio.run(exchange(chunks)) == []
