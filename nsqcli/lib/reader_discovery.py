"""Where a Reader's nsqds come from: configured addresses and nsqlookupd polling.

* Configured (direct) nsqds reconnect after a close with exponential backoff plus jitter
  (:class:`~nsqcli.lib.backoff.ReconnectBackoff`; pynsq waited a fixed 15 s).
* Every poll queries every lookupd and connects to the union of producers; the first periodic
  poll starts after a random fraction (``jitter``) of the interval so restarted consumers spread
  out. A closed connection triggers an immediate re-query (as go-nsq).
* An nsqd lookupd listed is *known*: after its connection drops it is retried directly, with
  the same backoff and jitter, whether lookupd lists it at that moment or not (a restarting nsqd
  unregisters from lookupd; go-nsq and pynsq wait for the next poll that lists it again).
* A known nsqd is forgotten (retries stop, its connection is retired once its in-flight messages
  are answered) only when it is missing from :data:`MISSING_POLLS` consecutive periodic polls
  that every lookupd answered and for :data:`MIN_GONE_SECONDS` at least, *and* its connection is
  closed or idle (no message since it went missing, none in flight). A restarted nsqlookupd
  answers ``TOPIC_NOT_FOUND`` until each nsqd registers again at its next ping (nsqd pings every
  15 s): that costs no connection, whatever the poll interval.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .addresses import format_address
from .backoff import ReconnectBackoff
from .lookupd import LookupdPoller, LookupResult

if TYPE_CHECKING:  # pragma: no cover
    from .reader import Reader

logger = logging.getLogger("nsqcli.lib.reader")

#: An nsqd may be forgotten after missing from this many consecutive complete periodic polls...
MISSING_POLLS = 3
#: ...spanning at least this many seconds (twice nsqd's 15 s lookupd ping: a restarted lookupd
#: has every nsqd registered again by then)
MIN_GONE_SECONDS = 30.0


class Discovery:
    """Connects a Reader to its nsqds and keeps it connected (see the module docstring)."""

    def __init__(
        self,
        reader: "Reader",
        nsqd_addresses: Sequence[tuple[str, int]],
        lookupd_addresses: Sequence[str],
        *,
        poll_interval: float,
        poll_jitter: float,
        connect_timeout: float,
        request_timeout: float,
        reconnect_interval: float,
        max_reconnect_interval: float,
        auth_secret: str | bytes | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.reader = reader
        self.direct: dict[str, tuple[str, int]] = {format_address(h, p): (h, p) for h, p in nsqd_addresses}
        self.poller = (
            LookupdPoller(lookupd_addresses, reader.topic, connect_timeout, request_timeout,
                          reader.name, auth_secret)
            if lookupd_addresses else None
        )
        self.poll_interval = poll_interval
        self.poll_jitter = poll_jitter
        self.reconnect_interval = reconnect_interval
        self.max_reconnect_interval = max(max_reconnect_interval, reconnect_interval)
        self.listed: dict[str, tuple[str, int]] = {}  # what lookupd listed last time
        self.discovered: dict[str, tuple[str, int]] = {}  # known from lookupd: kept connected
        self._missing: dict[str, int] = {}  # address -> consecutive complete periodic polls without it
        self._gone_since: dict[str, float] = {}  # address -> wall time of the first of those polls
        self.min_gone_seconds = MIN_GONE_SECONDS
        self._rng = rng or random.Random()
        self._backoff: dict[str, ReconnectBackoff] = {}
        self._not_before: dict[str, float] = {}  # address -> loop time of the next allowed attempt
        self.failure_text: dict[str, str] = {}  # address -> its last failure, until it connects
        self._timers: set[asyncio.TimerHandle] = set()
        self._query_task: asyncio.Task[None] | None = None
        self._poll_timer: asyncio.TimerHandle | None = None
        self.stopped = False

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        for host, port in list(self.direct.values()):
            self.reader._connect(host, port)
        if self.poller is None:
            return
        self.query()
        delay = self._rng.random() * self.poll_interval * self.poll_jitter
        self._poll_timer = self._loop().call_later(delay, self._poll)

    def stop(self) -> None:
        self.stopped = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._poll_timer is not None:
            self._poll_timer.cancel()
            self._poll_timer = None
        if self._query_task is not None and not self._query_task.done():
            self._query_task.cancel()

    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def _later(self, delay: float, callback: Callable[..., object], *args: Any) -> None:
        def fire() -> None:
            self._timers.discard(handle)
            if not self.stopped:
                callback(*args)

        handle = self._loop().call_later(delay, fire)
        self._timers.add(handle)

    # ---- lookupd ------------------------------------------------------------------------

    def _poll(self) -> None:
        self._poll_timer = None
        if self.stopped:
            return
        self.query(periodic=True)
        self._poll_timer = self._loop().call_later(self.poll_interval, self._poll)

    def query(self, fresh: bool = False, periodic: bool = False) -> "asyncio.Future[None]":
        """Query every lookupd now. A query already running is shared unless ``fresh`` (the
        public ``query_lookupd()``, whose caller wants an answer given after the call). Only a
        ``periodic`` poll's answer counts towards forgetting an nsqd it does not list."""
        task = self._query_task
        if not fresh and task is not None and not task.done():
            return task
        if self.poller is None or self.stopped:
            done = self._loop().create_future()
            done.set_result(None)
            return done
        self._query_task = task = self._loop().create_task(self._query(periodic))
        return task

    async def _query(self, periodic: bool = False) -> None:
        assert self.poller is not None
        try:
            result = await self.poller.query_all(on_answer=self._connect_listed)
            if not self.stopped:
                self._apply(result, periodic)
        except Exception:  # nobody awaits the periodic polls: never lose an error silently
            logger.exception("[%s] applying the lookupd answer failed", self.reader.name)

    def _apply(self, result: LookupResult, periodic: bool = False) -> None:
        listed = {format_address(h, p): (h, p) for h, p in result.producers}
        if result.answered:
            self.listed = listed if result.complete else {**self.listed, **listed}
        self._connect_listed(result.producers)
        if result.complete and periodic:
            self._count_missing(listed)

    def _count_missing(self, listed: dict[str, tuple[str, int]]) -> None:
        """A complete periodic poll: count the known nsqds it does not list, and forget those
        missing long enough whose connection is closed or idle (see the module docstring)."""
        for address in list(self.discovered):
            if address in listed or address in self.direct:
                continue
            missing = self._missing[address] = self._missing.get(address, 0) + 1
            now = time.time()
            since = self._gone_since.setdefault(address, now)
            if (missing >= MISSING_POLLS and now - since >= self.min_gone_seconds
                    and self.reader._idle_since(address, since)):
                logger.info("[%s:%s] nsqd not listed by lookupd for %d polls and idle: dropping it",
                            address, self.reader.name, missing)
                self._forget(address)
                self.reader._retire(address)

    def _forget(self, address: str) -> None:
        for table in (self.discovered, self._missing, self._gone_since, self._backoff,
                      self._not_before, self.failure_text):
            table.pop(address, None)

    def _connect_listed(self, producers: Sequence[tuple[str, int]]) -> None:
        """Connect to listed nsqds (called as each lookupd answers, and for the union)."""
        if self.stopped:
            return
        now = self._loop().time()
        for host, port in producers:
            address = format_address(host, port)
            if address not in self.direct:
                self.discovered[address] = (host, port)
                self._missing.pop(address, None)  # listed again: its count starts over
                self._gone_since.pop(address, None)
            if now >= self._not_before.get(address, 0.0):
                try:
                    self.reader._connect(host, port)
                except (TypeError, ValueError) as exc:  # a producer entry we cannot connect to
                    logger.warning("[%s] cannot connect to %s listed by lookupd: %s",
                                   self.reader.name, address, exc)

    # ---- connection outcomes (called by the Reader) -----------------------------------------

    def add_direct(self, host: str, port: int) -> None:
        self.direct[format_address(host, port)] = (host, port)

    def connection_succeeded(self, address: str) -> None:
        backoff = self._backoff.get(address)
        if self.failure_text.pop(address, None) is not None and backoff is not None:
            logger.info("[%s:%s] connected again after %d retries", address,
                        self.reader.name, backoff.attempts)
        if backoff is not None:
            backoff.reset()
        self._not_before.pop(address, None)

    def connection_closed(self, host: str, port: int, failure: str | None = None) -> None:
        """A connection (or a connection attempt) to ``host:port`` ended unexpectedly;
        ``failure`` is its error's text (the next attempt logs the same failure at debug).
        A configured or known nsqd is retried after its backoff delay."""
        if self.stopped:
            return
        address = format_address(host, port)
        if self.poller is not None:
            self.query()  # other nsqds may have appeared (go-nsq does the same)
        if address not in self.direct and address not in self.discovered:
            return  # forgotten meanwhile: nothing to retry
        if failure is not None:
            self.failure_text[address] = failure
        backoff = self._backoff.get(address)
        if backoff is None:
            backoff = self._backoff[address] = ReconnectBackoff(
                self.reconnect_interval, self.max_reconnect_interval, rng=self._rng)
        delay = backoff.next_delay()
        self._not_before[address] = self._loop().time() + delay
        logger.info("[%s:%s] reconnecting in %.2fs", address, self.reader.name, delay)
        self._later(delay, self._reconnect, address)

    def _reconnect(self, address: str) -> None:
        target = self.direct.get(address) or self.discovered.get(address)
        if target is not None:
            self.reader._connect(*target)
