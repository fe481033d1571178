"""One destination topic of nsq-to-nsq: its :class:`~nsqcli.lib.Publisher` and the source messages
it holds until the destination answered for their copies.

A source message is answered exactly once, and only from the publisher's callbacks:

* ``on_acknowledged``: the destination said ``OK`` for the copy (fan-out: every nsqd did) -> FIN;
* ``on_given_up``: the copy was refused or nsqd stayed unreachable for ``--retry-timeout``
  -> REQ with backoff, so the Reader backs off while the destination is down instead of
  spinning;
* ``on_skipped``: larger than the destination's max-msg-size -> REQ without backoff (the
  destination is fine; that message is not): it comes back after its requeue delay, which grows
  with its attempts.

Records are numbered by the publisher in the order handed in; the message of each number is
kept here under the same number (counted before ``publish()`` is called, as a callback may come
first). A publisher that stopped (every nsqd unreachable for ``--retry-timeout``, or refusing) is
closed in the background, which gives up what it still held, and the next message opens a new
one. While none can be opened, messages are requeued with backoff.

Held messages are TOUCHed before the source's msg_timeout could expire them (:meth:`touch_held`),
so a slow or briefly unreachable destination never makes nsqd deliver a message twice.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Sequence

from nsqcli.lib.message import MessageAnsweredError, finish_all

from .publishers import DestinationDown

if TYPE_CHECKING:  # pragma: no cover
    from nsqcli.lib import Message
    from nsqcli.lib.publisher import Publisher

    from .publishers import DestinationNsqds
    from .tally import Tally


#: after a failed attempt, messages are requeued without trying again for this long (the
#: Reader's backoff paces the attempts after that)
REOPEN_INTERVAL = 1.0


class Held:
    """The source messages handed to one Publisher, by its record numbers."""

    __slots__ = ("publisher", "messages", "count", "touch_mark")

    def __init__(self) -> None:
        self.publisher: Any = None  # the Publisher, once it started
        self.messages: dict[int, Message] = {}
        self.count = 0  # records handed to the publisher
        self.touch_mark = 0  # records handed in before the previous touch round


class DestinationTopic:
    """See the module docstring. ``fatal(error)`` is called with an error no retry fixes."""

    def __init__(self, topic: str, nsqds: DestinationNsqds, tally: Tally,
                 fatal: Callable[[BaseException], None], warn: Callable[[str], None],
                 info: Callable[[str], None]) -> None:
        self.topic = topic
        self._nsqds = nsqds
        self._tally = tally
        self._fatal = fatal
        self._warn = warn
        self._info = info
        self.current: Held | None = None
        self._retiring: dict[Held, asyncio.Task[Any]] = {}
        self._opening: asyncio.Task[Held | None] | None = None
        self._down = False  # the outage was reported (once)
        self._next_attempt = 0.0  # loop time before which no publisher is opened
        self._oversized_warned = False
        self.closing = False  # draining: open no publisher any more

    def __repr__(self) -> str:
        return f"<DestinationTopic {self.topic} held={self.held}>"

    @property
    def held(self) -> int:
        """Source messages waiting for the destination's answer."""
        helds = list(self._retiring) + ([self.current] if self.current is not None else [])
        return sum(len(held.messages) for held in helds)

    # ---- relaying ----------------------------------------------------------------------------

    async def relay(self, message: Message, body: bytes) -> None:
        """Hand ``body`` to the publisher; ``message`` is answered when the destination answers
        (or requeued now, with backoff, when no publisher can be opened)."""
        held = self.current  # None once its publisher stopped (_given_up retires it)
        if held is None:
            held = await self._reopen()
            if held is None or held is not self.current:  # none, or stopped meanwhile
                self._requeue([message], backoff=True)
                return
        held.count += 1
        held.messages[held.count] = message
        await held.publisher.publish(body)

    async def _reopen(self) -> Held | None:
        loop = asyncio.get_running_loop()
        if self.closing or (self._opening is None and loop.time() < self._next_attempt):
            return None
        if self._opening is None:
            self._opening = loop.create_task(self._open())
        opening = self._opening
        return await asyncio.shield(opening)

    async def _open(self) -> Held | None:
        held = Held()
        try:
            held.publisher = await self._nsqds.open(
                self.topic, partial(self._acknowledged, held), partial(self._given_up, held),
                partial(self._skipped, held))
        except DestinationDown as exc:
            self._next_attempt = asyncio.get_running_loop().time() + REOPEN_INTERVAL
            if not self._down:
                self._down = True
                self._warn(f"destination {self.topic}: {exc}; messages are requeued on the "
                           "source until it is back")
            return None
        except Exception as exc:  # noqa: BLE001 - no retry fixes it: the tool stops
            self._fatal(exc)
            return None
        finally:
            self._opening = None
        if self._down:
            self._down = False
            self._warn(f"destination {self.topic}: publishing again")
        if self.closing:  # the drain began meanwhile: it waits for this one too
            self._retire(held)
            return None
        self.current = held
        return held

    def _retire(self, held: Held) -> None:
        """Close a stopped publisher in the background: what it still holds is given up."""
        if self.current is held:
            self.current = None
        if held not in self._retiring and held.publisher is not None:
            self._check_refused(held.publisher)
            task = asyncio.get_running_loop().create_task(held.publisher.close())
            self._retiring[held] = task
            task.add_done_callback(lambda _: self._retiring.pop(held, None))

    def _check_refused(self, publisher: Publisher) -> None:
        from nsqcli.lib.publisher import NsqdRefusedError

        error = publisher.report.error
        if isinstance(error, NsqdRefusedError):  # E_UNAUTHORIZED, E_BAD_TOPIC...: stop
            self._fatal(error)

    # ---- the publisher's callbacks --------------------------------------------------------------

    def _acknowledged(self, held: Held, numbers: Sequence[int]) -> None:
        pop = held.messages.pop
        messages = [pop(number) for number in numbers]
        try:
            finish_all(messages)
        except MessageAnsweredError:  # not expected: answer the others one by one
            for message in messages:
                if not message.has_responded():
                    message.finish()
        self._tally.add_relayed(len(messages))

    def _given_up(self, held: Held, numbers: Sequence[int]) -> None:
        pop = held.messages.pop
        self._requeue([pop(number) for number in numbers], backoff=True)
        publisher = held.publisher
        if publisher is not None and publisher.stopped and held is self.current:
            self._retire(held)

    def _skipped(self, held: Held, numbers: Sequence[int]) -> None:
        pop = held.messages.pop
        messages = [pop(number) for number in numbers]
        self._tally.oversized += len(messages)
        say = self._info if self._oversized_warned else self._warn
        self._oversized_warned = True
        for message in messages:
            say(f"message {message.id.decode(errors='replace')} ({len(message.body)} bytes) is "
                f"larger than destination {self.topic} accepts: requeued")
        self._requeue(messages, backoff=False)

    def _requeue(self, messages: list[Message], backoff: bool) -> None:
        """REQ, delay ``requeue_delay x attempts`` (capped by max_requeue_delay)."""
        for message in messages:
            if not message.has_responded():
                message.requeue(-1, backoff=backoff)
        self._tally.requeued += len(messages)

    # ---- timers and the end -------------------------------------------------------------------

    def touch_held(self) -> int:
        """TOUCH every held message handed in before the previous call (called at most every
        msg_timeout/4: a message is touched within half its timeout); how many."""
        touched = 0
        for held in list(self._retiring) + ([self.current] if self.current else []):
            mark = held.touch_mark
            for number, message in held.messages.items():  # in number order
                if number > mark:
                    break
                if not message.has_responded():
                    message.touch()
                    touched += 1
            held.touch_mark = held.count
        return touched

    async def drain(self) -> None:
        """Publish what is held and wait for every answer; open nothing new."""
        self.closing = True
        if self._opening is not None:
            await asyncio.shield(self._opening)
        if self.current is not None:
            self._retire(self.current)
        while self._retiring:
            await asyncio.gather(*self._retiring.values(), return_exceptions=True)
