"""Named events with listeners (pynsq's ``nsq.event``): the names, and ``EventedMixin``.

Listeners are called with keyword arguments only (``callback(conn=..., data=...)``), as pynsq does.
Registering the same callback twice for one event, or removing one that is not registered, is an
error; both are reported with a clear exception instead of pynsq's bare ones.
"""

from __future__ import annotations

from typing import Any, Callable

from .protocol.errors import Error

CONNECT = "connect"
CLOSE = "close"
DATA = "data"
ERROR = "error"
IDENTIFY = "identify"
IDENTIFY_RESPONSE = "identify_response"
AUTH = "auth"
AUTH_RESPONSE = "auth_response"
READY = "ready"
RESPONSE = "response"
MESSAGE = "message"
HEARTBEAT = "heartbeat"
BACKOFF = "backoff"
CONTINUE = "continue"
RESUME = "resume"
REQUEUE = "requeue"
TOUCH = "touch"
FINISH = "finish"

__all__ = [
    "AUTH", "AUTH_RESPONSE", "BACKOFF", "CLOSE", "CONNECT", "CONTINUE", "DATA", "ERROR", "FINISH",
    "HEARTBEAT", "IDENTIFY", "IDENTIFY_RESPONSE", "MESSAGE", "READY", "REQUEUE", "RESPONSE",
    "RESUME", "TOUCH", "DuplicateListenerError", "EventedMixin", "InvalidListenerError",
]


#: a listener table: event name -> callbacks, in registration order
Listeners = dict[str, tuple[Callable[..., Any], ...]]


class DuplicateListenerError(Error, ValueError):
    """The callback is already registered for this event."""


class InvalidListenerError(Error, ValueError):
    """``off()`` was given a callback that is not registered for this event."""


class EventedMixin:
    """``on(name, callback)``, ``off(name, callback)`` and ``trigger(name, **kwargs)``.

    The listener table is created on the first ``on()``, so objects nobody listens to (most
    messages) pay nothing for it.
    """

    __slots__ = ("_listeners",)

    #: events whose listener tuple is mirrored in the attribute ``_<name>_listeners`` (kept
    #: current by on/off), so a per-message path reads it with one attribute load; a subclass
    #: that lists events here initialises those attributes to ``()``
    _mirrored_events: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._listeners: Listeners | None = None

    def on(self, name: str, callback: Callable[..., Any]) -> None:
        """Call ``callback(**payload)`` every time the event ``name`` is triggered."""
        if not callable(callback):
            raise TypeError(f"callback for event {name!r} is not callable: {callback!r}")
        listeners: Listeners | None = getattr(self, "_listeners", None)
        if listeners is None:
            listeners = self._listeners = {}
        registered = listeners.get(name, ())
        if callback in registered:
            raise DuplicateListenerError(f"{callback!r} is already listening for {name!r}")
        # tuples: trigger() iterates without copying, and on/off during a trigger are safe
        listeners[name] = registered + (callback,)
        if name in self._mirrored_events:
            setattr(self, f"_{name}_listeners", listeners[name])

    def off(self, name: str, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback`` for ``name``."""
        listeners: Listeners | None = getattr(self, "_listeners", None)
        registered = listeners.get(name) if listeners else None
        if listeners is None or not registered or callback not in registered:
            raise InvalidListenerError(f"{callback!r} is not listening for {name!r}")
        index = registered.index(callback)
        listeners[name] = registered[:index] + registered[index + 1:]
        if name in self._mirrored_events:
            setattr(self, f"_{name}_listeners", listeners[name])

    def trigger(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Call every listener of ``name`` in registration order with the given arguments."""
        listeners: Listeners | None = getattr(self, "_listeners", None)
        if listeners:
            for callback in listeners.get(name, ()):
                callback(*args, **kwargs)

    def has_listeners(self, name: str) -> bool:
        listeners: Listeners | None = getattr(self, "_listeners", None)
        return bool(listeners and listeners.get(name))
