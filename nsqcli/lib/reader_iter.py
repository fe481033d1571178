"""``Reader.messages()``: consume with ``async for`` instead of a message handler.

    async with nsq.Reader("t", "c", nsqd_tcp_addresses=["127.0.0.1:4150"]) as reader:
        async for message in reader.messages():
            ...
            await message.fin()          # or message.finish(); await message.req(); ...

How it works: a Reader without a message handler puts each message it receives into one buffer
(:class:`Inbox`) shared by its open streams and wakes one waiting stream, which then hands the
buffered messages out without suspending. nsqd never sends more than RDY, and a message counts
as in flight on its connection from delivery until it is answered, buffered or handed out alike,
so the buffer never holds more than ``max_in_flight`` messages: RDY stays the back-pressure.

Lifetime: the Reader sends RDY only while at least one stream is open (it connects and subscribes
with RDY 0 until then). A stream closes with :meth:`MessageStream.aclose`, at the end of ``async
with reader.messages() as stream:``, when it is garbage collected (in CPython at once when the
``async for`` that held the only reference is left, by ``break``, an exception or cancellation),
and when the Reader closes. When the last stream closes, the Reader sends RDY 0 to every nsqd
and then REQ (delay 0, no backoff) for each message still buffered; a message still on its way
is requeued as it arrives. Messages already handed out stay the user's to answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, AsyncIterator

from .message import Message

if TYPE_CHECKING:
    from .conn import AsyncConn
    from .reader import Reader

__all__ = ["Inbox", "MessageStream"]

logger = logging.getLogger("nsqcli.lib.reader")


class _Ticket:
    """A stream's open flag. It lives apart from the stream so that a waiting ``__anext__`` (and
    the traceback of its cancellation) does not keep the stream alive: leaving the ``async for``
    then frees the stream, which closes it."""

    __slots__ = ("open",)

    def __init__(self, open_: bool = True) -> None:
        self.open = open_


def _give_back(message: Message) -> None:
    """REQ with no delay and no backoff: a message no user code saw."""
    if message._has_responded:
        return
    try:
        message.requeue(0, backoff=False)
    except Exception:  # noqa: BLE001 - one message must not stop the others going back
        logger.exception("could not requeue message %s", message.id)


class Inbox:
    """The messages a Reader received for its streams, and the streams waiting for one."""

    __slots__ = ("buffer", "streams", "closed", "_waiters", "_reader")

    def __init__(self, reader: "Reader") -> None:
        self.buffer: deque[Message] = deque()
        self.streams = 0  # open streams; the Reader sends RDY only while there is one
        self.closed = bool(reader._closing)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._reader = reader

    # ---- the Reader's side ------------------------------------------------------------------

    def put(self, message: Message) -> None:
        """A message arrived (the hot path): buffer it for the streams, or give it back when
        none is open (it was on its way when the last one closed, or the Reader is closing)."""
        if self.streams and not self.closed:
            self.buffer.append(message)
            if self._waiters:
                self._wake_one()
        else:
            _give_back(message)

    def forget(self, conn: AsyncConn) -> None:
        """``conn`` closed: its buffered messages are nsqd's again (it redelivers them), and an
        answer could not reach it any more, so they are not handed out."""
        buffer = self.buffer
        if any(message._conn is conn for message in buffer):
            kept = [message for message in buffer if message._conn is not conn]
            buffer.clear()  # in place: a waiting get() holds this deque
            buffer.extend(kept)

    def close(self) -> None:
        """The Reader is closing (it sent RDY 0 already): give the buffer back, end every stream."""
        if self.closed:
            return
        self.closed = True
        self._give_back_buffered()
        self._wake_all()

    # ---- the streams' side ------------------------------------------------------------------

    def open_stream(self) -> _Ticket:
        if self.closed:
            return _Ticket(False)
        self.streams += 1
        if self.streams == 1:
            self._reader._reapply_rdy()  # the first stream: RDY goes up
        return _Ticket()

    def release(self, ticket: _Ticket) -> None:
        """A stream closed; the last one takes RDY down and gives the buffer back."""
        if not ticket.open:
            return
        ticket.open = False
        self.streams -= 1
        self._wake_all()  # a task waiting on this stream ends; the others wait again
        if self.streams == 0 and not self.closed:
            self._reader._reapply_rdy()  # RDY 0 first, or nsqd could send the REQ'd ones straight back
            self._give_back_buffered()

    async def get(self, ticket: _Ticket) -> Message:
        """The next buffered message for the stream holding ``ticket``; waits for one while the
        buffer is empty; StopAsyncIteration once the stream or the Reader closed."""
        buffer = self.buffer
        while True:
            if buffer and ticket.open:  # buffered messages imply an open inbox
                return buffer.popleft()
            if not ticket.open or self.closed:
                raise StopAsyncIteration
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                # cancelled: if a message had woken this waiter, another stream gets the wake-up
                woken = waiter.done() and not waiter.cancelled()
                waiter.cancel()
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
                if woken and buffer:
                    self._wake_one()
                raise

    # ---- internals ----------------------------------------------------------------------------

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _give_back_buffered(self) -> None:
        buffer = self.buffer
        while buffer:
            _give_back(buffer.popleft())


class MessageStream(AsyncIterator[Message]):
    """What :meth:`Reader.messages() <nsqcli.lib.Reader.messages>` returns: an async iterator of
    :class:`~nsqcli.lib.Message`, also an async context manager (``async with`` closes it), with
    :meth:`aclose` as async generators have. See :mod:`nsqcli.lib.reader_iter`."""

    __slots__ = ("_inbox", "_ticket", "_loop")

    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._ticket = inbox.open_stream()

    def __repr__(self) -> str:
        state = "open" if self._ticket.open else "closed"
        return f"<MessageStream {state} buffered={len(self._inbox.buffer)}>"

    def __aiter__(self) -> "MessageStream":
        return self

    async def __anext__(self) -> Message:
        inbox, ticket = self._inbox, self._ticket
        buffer = inbox.buffer
        if buffer and ticket.open:  # the hot path: one coroutine, no suspension
            return buffer.popleft()
        # about to wait: drop this frame's reference, so that neither the wait nor the traceback
        # of its cancellation keeps the stream alive (leaving the loop must free it: _Ticket)
        del self
        return await inbox.get(ticket)

    @property
    def closed(self) -> bool:
        return not self._ticket.open

    async def aclose(self) -> None:
        """Close the stream now; the last one to close requeues what is buffered (see above)."""
        self._inbox.release(self._ticket)

    async def __aenter__(self) -> "MessageStream":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._inbox.release(self._ticket)

    def __del__(self) -> None:
        ticket = getattr(self, "_ticket", None)
        if ticket is None or not ticket.open:
            return
        loop = self._loop
        try:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if loop is None or running is loop:
                self._inbox.release(ticket)
            elif not loop.is_closed():  # collected in another thread: release on the loop's
                loop.call_soon_threadsafe(self._inbox.release, ticket)
        except Exception:  # noqa: BLE001 - never raise from __del__
            logger.exception("could not close a message stream")
