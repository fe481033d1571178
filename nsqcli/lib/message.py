"""``Message``: one message delivered by nsqd, answered exactly once (FIN or REQ).

The connection that received a message is its *responder*: ``finish()``/``requeue()``/``touch()``
call it directly (it sends FIN/REQ/TOUCH), then fire the message's own events for any listeners.
That keeps the per-message cost to one small object with no listener table.
"""

from __future__ import annotations

from typing import Any, Awaitable, Generator, Protocol

from . import event
from .event import EventedMixin
from .protocol.errors import IntegrityError
from .protocol.frames import decode_message as _decode_frame

__all__ = ["ANSWERED", "Message", "MessageAnsweredError", "decode_message", "finish_all"]


class MessageAnsweredError(IntegrityError):
    """The message was already finished or requeued; a message is answered exactly once."""


class Responder(Protocol):  # what AsyncConn provides to its messages
    @property
    def id(self) -> str: ...

    def _on_message_finish(self, message: "Message") -> None: ...
    def _on_messages_finish(self, messages: "list[Message]") -> None: ...  # finish_all
    def _on_message_requeue(self, message: "Message", time_ms: int, backoff: bool) -> int: ...
    def _on_message_touch(self, message: "Message") -> None: ...
    @property
    def _answered(self) -> "Awaitable[None]": ...  # what fin()/req() return for its messages


class _Answered:
    """An awaitable with nothing to wait for: what fin()/req() return for a message built by
    hand, and a connection's ``_answered`` before its first write."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        # any iterator serves await; typeshed's Awaitable asks for a Generator
        return iter(())  # type: ignore[return-value]

    def done(self) -> bool:
        return True


ANSWERED = _Answered()


class Message(EventedMixin):
    """A message from nsqd: ``id`` (16 hex ASCII bytes), ``body`` (bytes), ``timestamp`` (ns),
    ``attempts``. Events: ``finish(message)``, ``requeue(message, delay, backoff, time_ms)``,
    ``touch(message)``.

    ``finish()`` and ``requeue()`` (with backoff) count as success and failure for the Reader's
    backoff; ``requeue(backoff=False)`` is neutral. ``fin()`` and ``req()`` do the same and
    return an awaitable (for ``async for message in reader.messages()`` code).
    """

    # _generation: the connection generation that delivered it (AsyncConn refuses answers from an
    # earlier one); None for a message built by hand
    __slots__ = ("id", "body", "timestamp", "attempts", "_async_enabled", "_has_responded", "_conn",
                 "_generation")

    def __init__(self, id: bytes, body: bytes, timestamp: int, attempts: int,  # noqa: A002
                 conn: Responder | None = None) -> None:
        self._listeners = None
        self.id = id
        self.body = body
        self.timestamp = timestamp
        self.attempts = attempts
        self._async_enabled = False
        self._has_responded = False
        self._conn = conn
        self._generation: int | None = None

    def __repr__(self) -> str:
        return (f"<Message id={self.id!r} attempts={self.attempts} body={len(self.body)} bytes"
                f"{' answered' if self._has_responded else ''}>")

    @property
    def nsqd_address(self) -> str | None:
        """``host:port`` of the nsqd that delivered this message (None if built by hand)."""
        conn = self._conn
        return conn.id if conn is not None else None

    def enable_async(self) -> None:
        """The handler will answer later: the Reader must not finish/requeue on return."""
        self._async_enabled = True

    def is_async(self) -> bool:
        return self._async_enabled

    def has_responded(self) -> bool:
        return self._has_responded

    def _answer(self, what: str) -> None:
        if self._has_responded:
            raise MessageAnsweredError(
                f"cannot {what} message {self.id!r}: it was already answered (finish/requeue)"
            )
        self._has_responded = True

    def finish(self) -> None:
        """Tell nsqd the message was handled (FIN)."""
        if self._has_responded:
            self._answer("finish")  # raises
        self._has_responded = True
        if self._conn is not None:
            self._conn._on_message_finish(self)
        if self._listeners:
            self.trigger(event.FINISH, message=self)

    def requeue(self, delay: float | None = -1, backoff: bool = True, time_ms: int | None = None,
                **kwargs: Any) -> None:
        """Give the message back to nsqd (REQ) for redelivery after a delay.

        ``delay`` is in seconds; -1 (the default) lets the connection compute it from the
        attempts (``requeue_delay x attempts``, capped). ``time_ms`` overrides ``delay``.
        """
        if time_ms is None:
            if delay is None or (not isinstance(delay, bool) and isinstance(delay, (int, float))
                                 and delay < 0):
                time_ms = -1
            elif isinstance(delay, bool) or not isinstance(delay, (int, float)):
                raise TypeError(f"requeue delay must be a number of seconds, not {delay!r}")
            else:
                time_ms = int(delay * 1000)
        elif isinstance(time_ms, bool) or not isinstance(time_ms, int):
            raise TypeError(f"requeue time_ms must be an int, not {time_ms!r}")
        elif time_ms < 0:
            time_ms = -1
        self._answer("requeue")
        if self._conn is not None:
            time_ms = self._conn._on_message_requeue(self, time_ms, bool(backoff))
        if self._listeners:
            self.trigger(event.REQUEUE, message=self, delay=delay, backoff=backoff,
                         time_ms=time_ms, **kwargs)

    def fin(self) -> Awaitable[None]:
        """``finish()`` now, returning an awaitable; see :meth:`req` for what awaiting it means."""
        self.finish()
        conn = self._conn
        return ANSWERED if conn is None else conn._answered

    def req(self, delay: float | None = -1, backoff: bool = True,
            time_ms: int | None = None) -> Awaitable[None]:
        """``requeue(delay, backoff, time_ms)`` now, returning an awaitable.

        The command is queued at once on the connection that delivered the message, and leaves
        with the others of this loop iteration in one write (awaiting is optional: forgetting
        ``await`` loses nothing). nsqd sends no reply to FIN or REQ, so awaiting does not wait
        for nsqd: it returns at once, unless the connection's last write left more than 64 KiB
        the socket has not taken, and then waits until it has (``StreamWriter.drain()``'s rule).
        An answer that cannot reach nsqd (its connection closed) is logged, not raised: nsqd
        redelivers that message.
        """
        self.requeue(delay, backoff, time_ms)
        conn = self._conn
        return ANSWERED if conn is None else conn._answered

    def touch(self) -> None:
        """Ask nsqd for more time before the message times out (TOUCH)."""
        if self._has_responded:
            raise MessageAnsweredError(f"cannot touch message {self.id!r}: it was already answered")
        if self._conn is not None:
            self._conn._on_message_touch(self)
        if self._listeners:
            self.trigger(event.TOUCH, message=self)


def finish_all(messages: "list[Message]") -> None:
    """``finish()`` every message, in order; the FINs bound for one connection are queued as one
    piece. Raises :class:`MessageAnsweredError` before anything is sent when one of them was
    answered already. Objects other than plain :class:`Message` get their own ``finish()``."""
    for message in messages:
        if type(message) is not Message:  # a subclass or a stand-in may override finish()
            for each in messages:
                each.finish()
            return
        if message._has_responded:
            message._answer("finish")  # raises
    conn = None
    mixed = False
    for message in messages:
        message._has_responded = True
        owner = message._conn
        if owner is not conn:
            if conn is not None:
                mixed = True
            conn = owner
    if not mixed:
        if conn is not None:
            conn._on_messages_finish(messages)
    else:
        groups: dict[Any, list[Message]] = {}
        for message in messages:
            groups.setdefault(message._conn, []).append(message)
        for owner, group in groups.items():
            if owner is not None:
                owner._on_messages_finish(group)
    for message in messages:
        if message._listeners:
            message.trigger(event.FINISH, message=message)


def decode_message(data: bytes) -> Message:
    """pynsq's ``decode_message``: the data of a message frame -> :class:`Message`."""
    frame = _decode_frame(data)
    return Message(frame.id, frame.body, frame.timestamp, frame.attempts)
