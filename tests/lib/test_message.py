"""Message: fields, decode_message, answered exactly once, events and the responder calls."""

import pytest

from nsqcli.lib.errors import Error, IntegrityError
from nsqcli.lib.message import Message, MessageAnsweredError, decode_message
from nsqcli.lib.protocol.frames import encode_message

MSG_ID = b"0123456789abcdef"


class Responder:
    id = "127.0.0.1:4150"

    def __init__(self, computed_ms=7000):
        self.calls = []
        self.computed_ms = computed_ms

    def _on_message_finish(self, message):
        self.calls.append(("FIN", message.id))

    def _on_message_requeue(self, message, time_ms, backoff):
        self.calls.append(("REQ", message.id, time_ms, backoff))
        return self.computed_ms if time_ms < 0 else time_ms

    def _on_message_touch(self, message):
        self.calls.append(("TOUCH", message.id))


def make(conn=None, attempts=1):
    return Message(MSG_ID, b"body", 1_700_000_000_000_000_000, attempts, conn)


def test_decode_message_from_frame_bytes():
    frame = encode_message(123456789, 3, MSG_ID, b"hello\x00world")
    msg = decode_message(frame[8:])  # without size and frame type
    assert isinstance(msg, Message)
    assert (msg.id, msg.body, msg.timestamp, msg.attempts) == (MSG_ID, b"hello\x00world", 123456789, 3)
    assert msg.nsqd_address is None
    assert not msg.has_responded() and not msg.is_async()


def test_public_decode_message_is_exported():
    import nsqcli.lib as nsq

    assert nsq.decode_message is decode_message
    assert nsq.Message is Message


def test_message_is_light():
    msg = make()
    assert not hasattr(msg, "__dict__")


def test_enable_async():
    msg = make()
    msg.enable_async()
    assert msg.is_async()


def test_finish_once_then_every_answer_raises_a_clear_error():
    conn = Responder()
    msg = make(conn)
    events = []
    msg.on("finish", lambda **kw: events.append(kw))
    msg.finish()
    assert msg.has_responded()
    assert conn.calls == [("FIN", MSG_ID)]
    assert events == [{"message": msg}]
    for answer in (msg.finish, msg.requeue, msg.touch):
        with pytest.raises(MessageAnsweredError) as info:
            answer()
        assert isinstance(info.value, IntegrityError) and isinstance(info.value, Error)
        assert not isinstance(info.value, AssertionError)
        assert "already answered" in str(info.value)
    assert conn.calls == [("FIN", MSG_ID)]  # nothing more reached the connection


def test_requeue_event_payload_with_default_delay_uses_connection_computation():
    conn = Responder(computed_ms=90_000)
    msg = make(conn, attempts=1)
    events = []
    msg.on("requeue", lambda **kw: events.append(kw))
    msg.requeue()
    assert conn.calls == [("REQ", MSG_ID, -1, True)]
    assert events == [{"message": msg, "delay": -1, "backoff": True, "time_ms": 90_000}]
    with pytest.raises(MessageAnsweredError):
        msg.finish()


@pytest.mark.parametrize("kwargs, expected_ms", [
    ({"delay": 5}, 5000),
    ({"delay": 0}, 0),
    ({"delay": 1.5}, 1500),
    ({"time_ms": 250}, 250),
    ({"delay": 5, "time_ms": 250}, 250),
    ({"delay": None}, -1),
])
def test_requeue_delay_to_time_ms(kwargs, expected_ms):
    conn = Responder()
    msg = make(conn)
    msg.requeue(backoff=False, **kwargs)
    assert conn.calls == [("REQ", MSG_ID, expected_ms, False)]


def test_requeue_rejects_bad_delays():
    msg = make(Responder())
    with pytest.raises(TypeError):
        msg.requeue(delay="10")
    with pytest.raises(TypeError):
        msg.requeue(time_ms=1.5)
    assert not msg.has_responded()  # a rejected call does not count as the answer


def test_touch_does_not_answer():
    conn = Responder()
    msg = make(conn)
    touched = []
    msg.on("touch", lambda **kw: touched.append(kw["message"]))
    msg.touch()
    msg.touch()
    assert not msg.has_responded()
    msg.finish()
    assert conn.calls == [("TOUCH", MSG_ID), ("TOUCH", MSG_ID), ("FIN", MSG_ID)]
    assert touched == [msg, msg]


def test_message_without_connection_still_answers_once():
    msg = make()
    msg.requeue(delay=3)
    with pytest.raises(MessageAnsweredError):
        msg.requeue()


def test_nsqd_address_comes_from_the_connection():
    assert make(Responder()).nsqd_address == "127.0.0.1:4150"


class DrainingResponder(Responder):
    """A responder whose fin()/req() awaitable is already resolved (nothing unsent)."""

    def __init__(self, done):
        super().__init__()
        self._answered = done


def test_fin_and_req_answer_at_once_and_return_an_awaitable():
    import asyncio

    async def main():
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        conn = DrainingResponder(done)
        first, second, third = make(conn), make(conn), make(conn)
        first.fin()  # not awaited: the FIN is queued all the same (no coroutine left pending)
        assert conn.calls == [("FIN", MSG_ID)] and first.has_responded()
        assert await second.req(0, backoff=False) is None
        assert conn.calls[-1] == ("REQ", MSG_ID, 0, False)
        await third.req()  # requeue()'s defaults: the connection's delay, with backoff
        assert conn.calls[-1] == ("REQ", MSG_ID, -1, True)
        with pytest.raises(MessageAnsweredError):
            first.fin()
        with pytest.raises(MessageAnsweredError):
            second.req()
        await make().fin()  # built by hand: nothing to wait for
        hand_built = make()
        await hand_built.req(delay=2)
        assert hand_built.has_responded()

    asyncio.run(main())
