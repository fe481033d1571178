"""LegacyReader: pynsq's tasks API with positional arguments mapped correctly."""

import asyncio

import pytest
from fake_nsqd import FakeNSQD

from nsqcli.lib import LegacyReader


def run(coro):
    asyncio.run(asyncio.wait_for(coro, 20))


def test_positional_arguments_land_on_the_right_parameters():
    async def main():
        with pytest.warns(DeprecationWarning):
            legacy = LegacyReader({"only": lambda m: True}, "t", "c", ["127.0.0.1:1"], None, 7, 9, 3,
                                  42, 11, 20, 64)
        (reader,) = legacy.readers
        assert reader.channel == "c"
        assert reader.nsqd_tcp_addresses == ["127.0.0.1:1"]
        assert reader.lookupd_http_addresses == []
        assert reader.max_tries == 7
        assert reader.max_in_flight == 9
        assert reader.conn_kwargs == {"requeue_delay": 3, "heartbeat_interval": 20}
        assert reader.lookupd_poll_interval == 42
        assert reader.low_rdy_idle_timeout == 11
        assert reader.max_backoff_duration == 64
        await legacy.close()

    run(main())


def test_one_reader_per_task_on_channel_dot_task():
    async def main():
        async with FakeNSQD() as fake:
            seen = {"a": [], "b": []}
            with pytest.warns(DeprecationWarning):
                legacy = LegacyReader(all_tasks={"a": lambda m: seen["a"].append(m.body) or True,
                                                 "b": lambda m: seen["b"].append(m.body) or True},
                                      topic="t", channel="c", nsqd_tcp_addresses=fake.address,
                                      max_in_flight=2)
            assert sorted(r.channel for r in legacy.readers) == ["c.a", "c.b"]
            await fake.wait_for("RDY 2", 2)
            assert sorted(line for line in fake.transcript if line.startswith("SUB")) == [
                "SUB t c.a", "SUB t c.b"]
            for peer in fake.peers:
                peer.send_message(b"hello")
            await fake.wait_for("FIN", 2)
            assert seen == {"a": [b"hello"], "b": [b"hello"]}
            await legacy.close()

    run(main())


@pytest.mark.parametrize(
    "args, kwargs, error",
    [
        ((), {"topic": "t", "channel": "c"}, TypeError),
        (({"x": 1}, "t", "c", "127.0.0.1:1"), {}, TypeError),
        (({}, "t", "c", "127.0.0.1:1"), {}, TypeError),
        (({"x": print}, "t"), {"topic": "t", "channel": "c"}, TypeError),
        (tuple(range(13)), {}, TypeError),
        (({"x": print}, "t", "c"), {}, ValueError),  # no address at all
    ],
)
def test_bad_arguments(args, kwargs, error):
    with pytest.warns(DeprecationWarning), pytest.raises(error):
        LegacyReader(*args, **kwargs)
