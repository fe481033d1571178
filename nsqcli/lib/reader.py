"""Reader: pynsq's high-level consumer API, with go-nsq's behaviour underneath.

    import nsqcli.lib as nsq

    def handler(message):
        print(message.body)
        return True                      # True -> FIN, False -> REQ (with backoff)

    reader = nsq.Reader(message_handler=handler, topic="t", channel="c",
                        lookupd_http_addresses=["http://127.0.0.1:4161"], max_in_flight=200)
    nsq.run()                            # or, inside asyncio.run(): async with reader: ...

    async with nsq.Reader("t", "c", nsqd_tcp_addresses=["127.0.0.1:4150"]) as reader:
        async for message in reader.messages():     # no handler: iterate (see reader_iter)
            await message.fin()

What changed from pynsq (the API is the same):

* Arguments are checked with ValueError/TypeError that name the problem (pynsq asserted).
* Each connection gets its RDY share right after SUB (go-nsq) instead of RDY 1 then a ramp.
* Backoff is a pluggable strategy: ``exponential`` (default, as go-nsq), ``full_jitter`` or
  ``pynsq`` (its BackoffTimer curve); one result counts per backoff window.
* Every lookupd is queried on every poll and the producers are unioned; a closed connection
  triggers an immediate re-query; configured nsqds, and nsqds found through lookupd, reconnect
  with exponential backoff plus jitter; an nsqd lookupd stopped listing is dropped only after
  several polls, once idle (see reader_discovery).
* ``close()`` drains: RDY 0, CLS, wait for in-flight messages to be answered, then close. It
  returns an awaitable, and ``async with Reader(...)`` works.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import warnings
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Union

from .addresses import Address, format_address, parse_addresses
from .backoff import BackoffTimer, BackoffWindow, StrategySpec, make_strategy
from .lookupd import normalise_lookupd_addresses
from .protocol.names import check_channel, check_topic
from .rdy import RdyPolicy
from .reader_core import ReaderCore
from .reader_discovery import Discovery

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .conn import AsyncConn
    from .conn_options import ConnKwargs
    from .message import Message
    from .reader_iter import Inbox, MessageStream

__all__ = ["Reader"]

logger = logging.getLogger("nsqcli.lib.reader")

#: what a message handler returns: True (FIN), False (REQ), None (answered by the handler, or
#: after ``message.enable_async()``), or an awaitable of one of those (a coroutine handler)
HandlerResult = Union[bool, None, Awaitable[Union[bool, None]]]
#: ``handler(message)``: see :class:`Reader`
MessageHandler = Callable[["Message"], HandlerResult]


def _number(name: str, value: object, minimum: float = 0.0, *, inclusive: bool = True,
            maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if value < minimum or (not inclusive and value == minimum):
        raise ValueError(f"{name} must be {'>=' if inclusive else '>'} {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {value!r}")
    return value


def _int(name: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _conn_class() -> type[AsyncConn]:
    from .conn import AsyncConn

    return AsyncConn


class Reader(ReaderCore):
    """Consume ``topic``/``channel`` from nsqd, calling ``message_handler`` for each message.

    :param topic: the NSQ topic
    :param channel: the NSQ channel
    :param message_handler: ``handler(message)``; return True to FIN, False to REQ; a coroutine
        (or any awaitable) is awaited and its result decides; after ``message.enable_async()``
        the handler answers later with ``message.finish()`` / ``message.requeue()``. Without
        one, iterate :meth:`messages` (no RDY is sent before either exists)
    :param name: used in log lines (default ``topic:channel``)
    :param nsqd_tcp_addresses: nsqd address(es) ``host:port`` to connect to directly
    :param lookupd_http_addresses: nsqlookupd HTTP address(es) to discover nsqds from
    :param max_tries: messages with more attempts go to :meth:`giving_up` then FIN (0 = no limit)
    :param max_in_flight: messages in flight at once, split between the nsqds (0 = paused)
    :param lookupd_poll_interval: seconds between lookupd polls
    :param low_rdy_idle_timeout: seconds an nsqd may keep RDY without sending a message while
        RDY is redistributed (more nsqds than ``max_in_flight``)
    :param low_rdy_timeout: seconds an nsqd that keeps sending may hold its RDY while another
        waits with none (redistribution only; go-nsq's ``low_rdy_timeout``)
    :param max_backoff_duration: longest backoff window in seconds (0 disables backoff)
    :param lookupd_poll_jitter: fraction of the interval by which the first poll is delayed
    :param lookupd_connect_timeout: seconds to connect to a lookupd
    :param lookupd_request_timeout: seconds for a lookupd request
    :param backoff_strategy: ``"exponential"`` (default), ``"full_jitter"``, ``"pynsq"``, a
        :class:`~nsqcli.lib.BackoffTimer` or a strategy object
    :param backoff_multiplier: seconds of the first exponential backoff step (x 2 per level)
    :param rdy_redistribute_interval: seconds between RDY redistribution checks
    :param close_timeout: seconds :meth:`close` waits for in-flight messages to be answered
    :param reconnect_interval: first delay before reconnecting to a configured nsqd (doubles,
        with jitter, up to ``max_reconnect_interval``)
    :param kwargs: passed to every :class:`~nsqcli.lib.AsyncConn` (unknown names: TypeError)
    """

    def __init__(
        self,
        topic: str,
        channel: str,
        message_handler: MessageHandler | None = None,
        name: str | None = None,
        nsqd_tcp_addresses: Address | Iterable[Address] | None = None,
        lookupd_http_addresses: str | Iterable[str] | None = None,
        max_tries: int = 5,
        max_in_flight: int = 1,
        lookupd_poll_interval: float = 60,
        low_rdy_idle_timeout: float = 10,
        max_backoff_duration: float = 128,
        lookupd_poll_jitter: float = 0.3,
        lookupd_connect_timeout: float = 1,
        lookupd_request_timeout: float = 2,
        *,
        backoff_strategy: StrategySpec | None = None,
        backoff_multiplier: float = 1.0,
        rdy_redistribute_interval: float = 5.0,
        low_rdy_timeout: float = 30.0,
        close_timeout: float = 30.0,
        reconnect_interval: float = 1.0,
        max_reconnect_interval: float = 60.0,
        **kwargs: Unpack[ConnKwargs],
    ) -> None:
        check_topic(topic)
        check_channel(channel)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        nsqd = parse_addresses(nsqd_tcp_addresses) if nsqd_tcp_addresses else []
        lookupd = normalise_lookupd_addresses(lookupd_http_addresses or None)
        if not nsqd and not lookupd:
            raise ValueError("Reader needs nsqd_tcp_addresses or lookupd_http_addresses (or both)")
        self.max_tries = _int("max_tries", max_tries)
        max_in_flight = _int("max_in_flight", max_in_flight)
        _number("lookupd_poll_interval", lookupd_poll_interval, 0, inclusive=False)
        _number("low_rdy_idle_timeout", low_rdy_idle_timeout, 0, inclusive=False)
        _number("max_backoff_duration", max_backoff_duration)
        _number("lookupd_poll_jitter", lookupd_poll_jitter, 0, maximum=1)
        _number("lookupd_connect_timeout", lookupd_connect_timeout, 0, inclusive=False)
        _number("lookupd_request_timeout", lookupd_request_timeout, 0, inclusive=False)
        _number("backoff_multiplier", backoff_multiplier)
        _number("rdy_redistribute_interval", rdy_redistribute_interval, 0, inclusive=False)
        _number("low_rdy_timeout", low_rdy_timeout, 0, inclusive=False)
        _number("close_timeout", close_timeout)
        _number("reconnect_interval", reconnect_interval, 0, inclusive=False)
        _number("max_reconnect_interval", max_reconnect_interval, 0, inclusive=False)
        conn_class = _conn_class()
        from .writer_links import check_conn_kwargs  # shared with Writer

        check_conn_kwargs(kwargs, conn_class, "Reader")
        conn_class("127.0.0.1", 4150, **kwargs)  # bad option values fail now, not at connect time

        self.topic = topic
        self.channel = channel
        self.name = name or f"{topic}:{channel}"
        self.message_handler: MessageHandler | None = None
        self._inbox: Inbox | None = None  # created by the first messages() call
        if message_handler is not None:
            self.set_message_handler(message_handler)
        self.nsqd_tcp_addresses = [format_address(h, p) for h, p in nsqd]
        random.shuffle(lookupd)  # as pynsq: spread readers over the lookupds
        self.lookupd_http_addresses = lookupd
        self.max_in_flight = max_in_flight
        self.low_rdy_idle_timeout = low_rdy_idle_timeout
        self.low_rdy_timeout = low_rdy_timeout
        self.max_backoff_duration = max_backoff_duration
        self.lookupd_poll_interval = lookupd_poll_interval
        self.lookupd_poll_jitter = lookupd_poll_jitter
        self.lookupd_connect_timeout = lookupd_connect_timeout
        self.lookupd_request_timeout = lookupd_request_timeout
        self.conn_kwargs = kwargs
        strategy = make_strategy(backoff_strategy, max_backoff_duration, backoff_multiplier)
        self.backoff_strategy = strategy
        cls = type(self)
        self._plain_hooks = (cls.preprocess_message is Reader.preprocess_message
                             and cls.validate_message is Reader.validate_message)
        self._plain_process = cls.process_message is Reader.process_message
        disabled = getattr(cls.disabled, "__func__", cls.disabled)
        # a classmethod read from the class is a bound method: its __func__ is the function
        self._disabled_hook = disabled is not Reader.disabled.__func__  # type: ignore[attr-defined]
        if self._disabled_hook:
            warnings.warn("Reader.disabled() is deprecated; use set_max_in_flight(0) instead",
                          DeprecationWarning, stacklevel=2)
        discovery = Discovery(
            self, nsqd, lookupd, poll_interval=lookupd_poll_interval, poll_jitter=lookupd_poll_jitter,
            connect_timeout=lookupd_connect_timeout, request_timeout=lookupd_request_timeout,
            reconnect_interval=reconnect_interval, max_reconnect_interval=max_reconnect_interval,
        )  # the AUTH secret is not sent to lookupd (go-nsq does; pynsq never did)
        policy = RdyPolicy(max_in_flight, low_rdy_idle_timeout, low_rdy_timeout=low_rdy_timeout)
        self._init_core(policy, BackoffWindow(strategy), discovery, conn_class, rdy_redistribute_interval,
                        close_timeout)

    def __repr__(self) -> str:
        return f"<Reader {self.name} conns={len(self.conns)} max_in_flight={self.max_in_flight}>"

    @property
    def backoff_timer(self) -> BackoffTimer | None:
        """pynsq's attribute: the BackoffTimer when ``backoff_strategy="pynsq"`` (else None)."""
        return getattr(self.backoff_strategy, "timer", None)

    # ---- public API (pynsq) -------------------------------------------------------------

    def set_message_handler(self, message_handler: MessageHandler) -> None:
        """Use ``message_handler(message)`` for every message from now on (not after
        :meth:`messages`: RuntimeError)."""
        if not callable(message_handler):
            raise TypeError(f"message_handler must be callable, not {type(message_handler).__name__}")
        if self._inbox is not None:
            raise RuntimeError(f"Reader {self.name} is consumed with messages(); it cannot also "
                               "have a message_handler")
        first = self.message_handler is None
        self.message_handler = message_handler
        if first and getattr(self, "_started", False):
            self._reapply_rdy()  # a Reader without a consumer held RDY at 0

    def messages(self) -> "MessageStream":
        """Consume with ``async for message in reader.messages():`` instead of a handler.

        Each message is handed out once and is the caller's to answer: ``message.finish()`` /
        ``await message.fin()`` (FIN), ``message.requeue(...)`` / ``await message.req(...)``
        (REQ; with backoff by default, as a handler returning False), ``message.touch()``. A
        message never answered stays in flight, counting against ``max_in_flight``, until nsqd's
        msg_timeout redelivers it; :meth:`close` waits for it up to ``close_timeout``.

        At most ``max_in_flight`` messages are buffered (RDY is the back-pressure), and RDY is
        sent only while a stream is open. Leaving the loop (``break``, an exception, the task's
        cancellation), ``aclose()`` or the end of ``async with reader.messages() as stream:``
        closes the stream; when the last one closes, RDY goes to 0 and the buffered messages,
        never handed out, are requeued at once (REQ, delay 0, no backoff; nsqd counts the
        delivery as an attempt). A stream held in a variable stays open across loops until it
        is closed or dropped. Several streams may be open at once (a pool of worker tasks): each
        message goes to one of them. :meth:`close` ends every stream (StopAsyncIteration) after
        requeueing the buffer. ``max_tries``, ``giving_up`` and the validation hooks apply as
        with a handler.

        Raises RuntimeError when the Reader has a ``message_handler`` (or overrides
        ``process_message``): a Reader is consumed one way or the other.
        """
        if self.message_handler is not None or not self._plain_process:
            raise RuntimeError(f"Reader {self.name} has a message_handler; consume it with the "
                               "handler or with messages(), not both")
        from .reader_iter import Inbox, MessageStream

        if self._inbox is None:
            self._inbox = Inbox(self)
        return MessageStream(self._inbox)

    def set_max_in_flight(self, max_in_flight: int) -> None:
        """Change max_in_flight at run time; 0 pauses the Reader (RDY 0 everywhere)."""
        self._set_max_in_flight(_int("max_in_flight", max_in_flight))

    def connect_to_nsqd(self, host: str, port: int) -> AsyncConn | None:
        """Connect to one more nsqd (kept connected like the configured ones); returns the new
        connection, or None when one to that address already exists."""
        if not isinstance(host, str) or not host:
            raise TypeError(f"host must be a non-empty str, not {host!r}")
        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"port must be an int, not {type(port).__name__}")
        self._discovery.add_direct(host, port)
        address = format_address(host, port)
        if address not in self.nsqd_tcp_addresses:
            self.nsqd_tcp_addresses.append(address)
        return self._connect(host, port)

    def query_lookupd(self) -> "asyncio.Future[None]":
        """Query every lookupd now and connect to new producers; returns an awaitable."""
        return self._discovery.query(fresh=True)

    # ---- hooks to override (pynsq) ------------------------------------------------------

    def process_message(self, message: Message) -> HandlerResult:
        """Call the message handler; override to change how handlers are called."""
        handler = self.message_handler
        if handler is None:
            raise TypeError(f"Reader {self.name} has no message_handler (set_message_handler())")
        return handler(message)

    def giving_up(self, message: Message) -> None:
        """Called for a message with more than ``max_tries`` attempts, before it is FINed."""
        logger.warning("[%s] giving up on message %s after %d tries (max:%d) %r", self.name,
                       message.id, message.attempts, self.max_tries, message.body)

    def heartbeat(self, conn: AsyncConn) -> None:
        """Called for every heartbeat nsqd sends; override to monitor liveness."""

    def preprocess_message(self, message: Message) -> Any:
        """Return what :meth:`validate_message` checks (the message itself by default)."""
        return message

    def validate_message(self, message: Any) -> bool:
        """Return False to FIN the message without handling it."""
        return True

    @classmethod
    def disabled(cls) -> bool:
        """Deprecated (use ``set_max_in_flight(0)``): return True to pause the Reader."""
        return False

    def _rdy_allowed(self) -> bool:
        if self._disabled_hook and self.disabled():
            return False
        inbox = self._inbox
        if inbox is not None:
            return inbox.streams > 0
        return self.message_handler is not None or not self._plain_process  # else: no consumer yet

    def _on_closing(self) -> None:
        inbox = self._inbox
        if inbox is not None:
            self._apply(self._policy.pause(list(self.conns.values())))  # RDY 0 before the REQs
            inbox.close()

    def _on_conn_close(self, conn: AsyncConn, **kwargs: object) -> None:
        super()._on_conn_close(conn, **kwargs)
        if self._inbox is not None:
            self._inbox.forget(conn)

    # ---- message handling (the hot path) ------------------------------------------------

    def _on_conn_message(self, conn: AsyncConn, message: Message) -> None:
        # called by AsyncConn as conn=..., message=... (no catch-all: no dict per message)
        share = self._ramp_share
        if share and conn.rdy != share and conn.rdy != conn.max_rdy_count:
            self._ramp(conn)
        try:
            if 0 < self.max_tries < message.attempts:
                self._give_up(message)
                return
            if not self._plain_hooks:
                if not self.validate_message(self.preprocess_message(message)):
                    if not message.has_responded():
                        message.finish()
                    return
            handler = self.message_handler
            if self._plain_process and handler is not None:
                result = handler(message)
            elif self._inbox is not None:
                self._inbox.put(message)  # for messages(); answered by the user
                return
            else:
                result = self.process_message(message)
        except Exception:
            logger.exception("[%s:%s] uncaught exception while handling message %s body:%r",
                             conn.id, self.name, message.id, message.body)
            if not message.has_responded():
                message.requeue()
            return
        # the Message's flags are read directly: has_responded()/is_async() cost two calls
        if result is True:
            if not (message._has_responded or message._async_enabled):
                message.finish()
        elif result is False:
            if not (message._has_responded or message._async_enabled):
                message.requeue()
        elif result is None:
            if not (message._has_responded or message._async_enabled):
                logger.error("[%s:%s] handler returned None without answering message %s or calling "
                             "enable_async(); requeuing it (return True to FIN, False to REQ)",
                             conn.id, self.name, message.id)
                message.requeue()
        elif inspect.isawaitable(result):
            self._await_handler(message, result)
        elif not message.has_responded() and not message.is_async():
            (message.finish if result else message.requeue)()

    def _await_handler(self, message: Message, result: Awaitable[object]) -> None:
        # its own method: a closure in _on_conn_message would cost two cells per message
        message.enable_async()
        task = asyncio.ensure_future(result)
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._on_handler_done(message, done))

    def _on_handler_done(self, message: Message, task: "asyncio.Future[object]") -> None:
        self._tasks.discard(task)
        if message.has_responded():
            if not task.cancelled() and task.exception() is not None:
                logger.error("[%s] handler failed after answering message %s: %r",
                             self.name, message.id, task.exception())
            return
        if task.cancelled():
            ok = False
        elif task.exception() is not None:
            error = task.exception()
            logger.error("[%s] uncaught exception while handling message %s body:%r",
                         self.name, message.id, message.body, exc_info=error)
            ok = False
        else:
            ok = bool(task.result())
        try:
            message.finish() if ok else message.requeue()
        except Exception:
            logger.exception("[%s] could not answer message %s", self.name, message.id)

    def _give_up(self, message: Message) -> None:
        try:
            self.giving_up(message)
        except Exception:
            logger.exception("[%s] giving_up() failed for message %s", self.name, message.id)
        if not message.has_responded():
            message.finish()
