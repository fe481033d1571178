"""EventedMixin and the event names (pynsq's nsq.event)."""

import pytest

from nsqcli.lib import event
from nsqcli.lib.event import DuplicateListenerError, EventedMixin, InvalidListenerError
from nsqcli.lib.errors import Error


def test_event_names_match_pynsq():
    pynsq_event = pytest.importorskip("nsq.event")
    names = {n: getattr(pynsq_event, n) for n in dir(pynsq_event) if n.isupper()}
    assert names
    for name, value in names.items():
        assert getattr(event, name) == value


def test_listeners_get_keyword_payload_in_registration_order():
    obj = EventedMixin()
    calls = []
    obj.on("x", lambda **kw: calls.append(("first", kw)))
    obj.on("x", lambda **kw: calls.append(("second", kw)))
    obj.trigger("x", conn="c", data=b"OK")
    assert calls == [("first", {"conn": "c", "data": b"OK"}), ("second", {"conn": "c", "data": b"OK"})]


def test_trigger_without_listeners_is_a_no_op():
    obj = EventedMixin()
    obj.trigger("nothing", a=1)
    obj.on("other", lambda **kw: None)
    obj.trigger("nothing", a=1)
    assert not obj.has_listeners("nothing")
    assert obj.has_listeners("other")


def test_duplicate_listener_raises():
    obj = EventedMixin()

    def cb(**kw):
        pass

    obj.on("x", cb)
    with pytest.raises(DuplicateListenerError) as info:
        obj.on("x", cb)
    assert isinstance(info.value, Error)
    obj.on("y", cb)  # the same callback on another event is fine


def test_off_removes_and_off_unknown_raises():
    obj = EventedMixin()
    calls = []

    def cb(**kw):
        calls.append(kw)

    with pytest.raises(InvalidListenerError):
        obj.off("x", cb)
    obj.on("x", cb)
    obj.off("x", cb)
    obj.trigger("x", a=1)
    assert calls == []
    with pytest.raises(InvalidListenerError):
        obj.off("x", cb)


def test_non_callable_listener_is_a_type_error():
    with pytest.raises(TypeError):
        EventedMixin().on("x", "not callable")


def test_listener_may_remove_itself_while_triggered():
    obj = EventedMixin()
    calls = []

    def once(**kw):
        calls.append("once")
        obj.off("x", once)

    obj.on("x", once)
    obj.on("x", lambda **kw: calls.append("always"))
    obj.trigger("x")
    obj.trigger("x")
    assert calls == ["once", "always", "always"]


def test_subclass_without_init_call_still_works():
    class Thing(EventedMixin):
        def __init__(self):
            pass  # forgot super().__init__()

    thing = Thing()
    got = []
    thing.on("x", lambda **kw: got.append(kw))
    thing.trigger("x", v=1)
    assert got == [{"v": 1}]
