"""Reader construction: pynsq's signature and defaults, argument checks, hooks."""

import asyncio
import inspect

import pytest

import nsqcli.lib as nsq
from nsqcli.lib.backoff import ExponentialBackoff, FullJitterBackoff, TimerBackoff

ADDR = "127.0.0.1:4150"


def make(**kwargs):
    """Build a Reader inside a loop (so it never starts connecting) and close it at once."""
    async def main():
        reader = nsq.Reader(**{"topic": "t", "channel": "c", "nsqd_tcp_addresses": ADDR, **kwargs})
        reader.close()
        return reader

    return asyncio.run(main())


def test_signature_matches_pynsq():
    import nsq as pynsq

    ours = inspect.signature(nsq.Reader.__init__).parameters
    theirs = inspect.signature(pynsq.Reader.__init__).parameters
    positional = [n for n, p in theirs.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert [n for n, p in ours.items() if p.kind is p.POSITIONAL_OR_KEYWORD] == positional
    for name in positional[1:]:
        assert ours[name].default == theirs[name].default, name
    assert any(p.kind is p.VAR_KEYWORD for p in ours.values())
    for method in ("close", "connect_to_nsqd", "query_lookupd", "is_starved", "set_max_in_flight",
                   "set_message_handler", "process_message", "giving_up", "heartbeat", "disabled",
                   "preprocess_message", "validate_message"):
        assert callable(getattr(nsq.Reader, method)), method


def test_defaults_and_attributes():
    reader = make(lookupd_http_addresses="127.0.0.1:4161")
    assert reader.name == "t:c"
    assert reader.max_tries == 5 and reader.max_in_flight == 1
    assert reader.nsqd_tcp_addresses == [ADDR]
    assert reader.lookupd_http_addresses == ["127.0.0.1:4161"]
    assert reader.conn_kwargs == {}
    assert isinstance(reader.backoff_strategy, ExponentialBackoff)
    assert reader.backoff_strategy.max_duration == 128
    assert reader.backoff_timer is None
    assert reader.conns == {} and reader.total_rdy == 0 and not reader.is_starved()


def test_backoff_strategy_choices():
    assert isinstance(make(backoff_strategy="full_jitter").backoff_strategy, FullJitterBackoff)
    pynsq_like = make(backoff_strategy="pynsq", max_backoff_duration=64)
    assert isinstance(pynsq_like.backoff_strategy, TimerBackoff)
    assert pynsq_like.backoff_timer.max_interval == 64
    timer = nsq.BackoffTimer(0, 10)
    assert make(backoff_strategy=timer).backoff_timer is timer


def test_conn_kwargs_are_checked_and_kept():
    reader = make(heartbeat_interval=10, snappy=True, requeue_delay=5)
    assert reader.conn_kwargs == {"heartbeat_interval": 10, "snappy": True, "requeue_delay": 5}
    with pytest.raises(TypeError, match="bogus"):
        make(bogus=1)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"topic": ""}, ValueError),
        ({"topic": "bad topic"}, ValueError),
        ({"topic": 5}, TypeError),
        ({"channel": "x" * 65}, ValueError),
        ({"channel": None}, TypeError),
        ({"nsqd_tcp_addresses": None}, ValueError),
        ({"nsqd_tcp_addresses": "nohostport"}, ValueError),
        ({"nsqd_tcp_addresses": 4150}, TypeError),
        ({"lookupd_http_addresses": 4161, "nsqd_tcp_addresses": None}, TypeError),
        ({"message_handler": "not callable"}, TypeError),
        ({"name": 3}, TypeError),
        ({"max_in_flight": -1}, ValueError),
        ({"max_in_flight": 2.5}, TypeError),
        ({"max_tries": -1}, ValueError),
        ({"max_tries": "5"}, TypeError),
        ({"lookupd_poll_interval": 0}, ValueError),
        ({"lookupd_poll_jitter": 1.5}, ValueError),
        ({"lookupd_poll_jitter": -0.1}, ValueError),
        ({"lookupd_connect_timeout": "1"}, TypeError),
        ({"lookupd_request_timeout": 0}, ValueError),
        ({"low_rdy_idle_timeout": 0}, ValueError),
        ({"max_backoff_duration": -1}, ValueError),
        ({"backoff_strategy": "linear"}, ValueError),
        ({"backoff_strategy": 3}, TypeError),
        ({"close_timeout": -1}, ValueError),
        ({"heartbeat_interval": "x"}, TypeError),  # AsyncConn's own checks, run at once
        ({"deflate_level": 12, "deflate": True}, ValueError),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error):
    with pytest.raises(error):
        make(**kwargs)


def test_lookupd_only_and_both_kinds():
    reader = make(nsqd_tcp_addresses=None, lookupd_http_addresses=["a:1", "b:2"])
    assert sorted(reader.lookupd_http_addresses) == ["a:1", "b:2"]
    both = make(lookupd_http_addresses="a:1")
    assert both.nsqd_tcp_addresses == [ADDR]


def test_overriding_disabled_is_deprecated_but_honoured():
    class Disabled(nsq.Reader):
        @classmethod
        def disabled(cls):
            return True

    async def main():
        with pytest.warns(DeprecationWarning, match="set_max_in_flight"):
            reader = Disabled("t", "c", print, nsqd_tcp_addresses=ADDR)
        assert not reader._rdy_allowed()
        reader.close()

    asyncio.run(main())


def test_handler_required_when_processing():
    async def main():
        reader = nsq.Reader("t", "c", nsqd_tcp_addresses=ADDR)
        with pytest.raises(TypeError, match="no message_handler"):
            reader.process_message(object())
        reader.set_message_handler(lambda m: "handled")
        assert reader.process_message(object()) == "handled"
        with pytest.raises(TypeError):
            reader.set_message_handler(None)
        reader.close()

    asyncio.run(main())


def test_connect_to_nsqd_argument_checks():
    async def main():
        reader = nsq.Reader("t", "c", print, nsqd_tcp_addresses=ADDR)
        with pytest.raises(TypeError):
            reader.connect_to_nsqd("127.0.0.1", "4150")
        with pytest.raises(TypeError):
            reader.connect_to_nsqd(None, 4150)
        await reader.close()
        assert reader.connect_to_nsqd("127.0.0.1", 4151) is None  # closed: nothing starts

    asyncio.run(main())


def test_close_without_a_running_loop_is_immediate():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # IOLoop.current() outside a loop
        reader = nsq.Reader("t", "c", print, nsqd_tcp_addresses=ADDR)
    done = reader.close()
    assert reader.close() is done

    async def wait():
        await done

    asyncio.run(wait())
