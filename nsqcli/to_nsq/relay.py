"""nsq-to-nsq's engine: one Reader per source topic feeding the :class:`DestinationTopic` of its
destination topic, until a signal (or an error no retry fixes) stops it.

Back-pressure is the source's RDY: a Reader holds at most ``--max-in-flight`` messages, buffered
or held by a destination until its answer, so a slow or unreachable destination simply stops the
flow. The stop drains: the Readers send RDY 0 and CLS and give back what they had not handed
out; the messages being relayed are published; the destination's answers FIN or REQ them; the
Readers wait for those answers (longer than the publishers may retry) and close.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from nsqcli.cli.exit_codes import ExitStatus

from .destination import DestinationTopic
from .json_filter import FilterResult, JsonFilter
from .tally import Tally

if TYPE_CHECKING:  # pragma: no cover
    from nsqcli.cli.console import Console
    from nsqcli.cli.options import ClientSettings
    from nsqcli.cli.runner import Shutdown
    from nsqcli.cli.timers import Repeating
    from nsqcli.lib import Message, Reader

    from .publishers import DestinationNsqds

PROGRESS_INTERVAL = 0.5
UNKNOWN_TIMEOUT_CHECK = 1.0  # how soon to look again while no source nsqd stated its msg_timeout
#: the relay's defaults for consumer options (each may be set with --consumer-opt): never drop a
#: message; requeue after 1 s x attempts (go-nsq: 90 s); back off at most 16 s, so that
#: consumption resumes within half a minute of the destination's return
READER_DEFAULTS = {"max_tries": 0, "max_backoff_duration": 16.0}
CONN_DEFAULTS = {"requeue_delay": 1.0}


@dataclass
class RelayConfig:
    topics: list[str]
    channel: str = "nsq_to_nsq"
    destination_topic: str | None = None  # None: the source topic's name
    max_in_flight: int = 200
    json_filter: JsonFilter | None = None
    retry_timeout: float = 10.0
    progress: bool = False
    status_every: int = 0


class Relay:
    """See the module docstring."""

    def __init__(self, config: RelayConfig, source: ClientSettings, nsqds: DestinationNsqds,
                 console: Console) -> None:
        self.config = config
        self.source = source
        self.console = console
        self.tally = Tally(config.status_every, console.notice)
        self.lanes: dict[str, DestinationTopic] = {}
        for topic in config.topics:
            name = config.destination_topic or topic
            if name not in self.lanes:
                self.lanes[name] = DestinationTopic(name, nsqds, self.tally, self._on_fatal,
                                                    console.warning, console.info)
        self.readers: list[Reader] = []
        self.error: BaseException | None = None
        self._failed: asyncio.Event | None = None
        self._timers: list[Repeating] = []

    # ---- running -------------------------------------------------------------------------------

    async def run(self, shutdown: Shutdown) -> ExitStatus:
        from nsqcli.cli.consumer_guard import FatalConnectionGuard
        from nsqcli.cli.console import RateMeter, forward_library_logs
        from nsqcli.cli.timers import Repeating

        forward_library_logs(self.console)
        self._failed = asyncio.Event()
        guard = FatalConnectionGuard(warn=self.console.warning)
        pumps: list[asyncio.Task[None]] = []
        meter = RateMeter()
        try:
            for topic in self.config.topics:
                reader = guard.reader(topic, self.config.channel, **self._reader_kwargs())
                reader.giving_up = _giving_up_hook(self, reader)
                self.readers.append(reader)
                lane = self.lanes[self.config.destination_topic or topic]
                pumps.append(asyncio.get_running_loop().create_task(self._pump(reader, lane)))
                pumps[-1].add_done_callback(self._pump_ended)
            self.console.info(f"relaying {', '.join(self.config.topics)} (channel "
                              f"{self.config.channel}) to {', '.join(self.lanes)}")
            shutdown.describe_wait(self._waiting)
            self._timers.append(Repeating(self._touch_interval, self._touch))
            if self.config.progress:
                self._timers.append(Repeating(PROGRESS_INTERVAL, lambda: self._show_progress(meter)))
            try:
                await guard.run(self._until_stopped(shutdown))
            except Exception as exc:  # noqa: BLE001 - a source nsqd no retry fixes: drain first
                self._on_fatal(exc)
            await self._drain(pumps)
        finally:
            for timer in self._timers:
                timer.cancel()
            for pump in pumps:
                pump.cancel()
            guard.close()
        if self.config.progress:
            self._show_progress(meter)
            self.console.end_progress()
        self.console.notice(self.tally.line())
        if self.error is not None:
            raise self.error
        return ExitStatus.SUCCESS

    def _reader_kwargs(self) -> dict[str, Any]:
        source = self.source
        reader_kwargs: dict[str, Any] = dict(READER_DEFAULTS)
        # the drain waits for the destination (up to --retry-timeout, plus connecting) before
        # the Readers give up waiting for their held messages' answers
        reader_kwargs["close_timeout"] = self.config.retry_timeout + 15.0
        reader_kwargs.update(source.reader_kwargs)
        reader_kwargs.setdefault("max_in_flight", self.config.max_in_flight)
        conn_kwargs = dict(CONN_DEFAULTS)
        conn_kwargs.update(source.conn_kwargs)
        return dict(nsqd_tcp_addresses=source.nsqd_tcp_addresses or None,
                    lookupd_http_addresses=source.lookupd_http_addresses or None,
                    **reader_kwargs, **conn_kwargs)

    async def _pump(self, reader: Reader, lane: DestinationTopic) -> None:
        """Take the source's messages and hand them to the destination, one at a time."""
        json_filter = self.config.json_filter
        tally = self.tally
        relay = lane.relay
        async for message in reader.messages():
            if json_filter is None:
                await relay(message, message.body)
                continue
            body = json_filter(message.body)
            if type(body) is bytes:
                await relay(message, body)
                continue
            message.finish()  # filtered out: nothing to relay
            tally.filtered += 1
            if body is FilterResult.NOT_JSON:
                tally.not_json += 1

    def _pump_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._on_fatal(task.exception())  # type: ignore[arg-type]  # a bug: say it, stop

    async def _until_stopped(self, shutdown: Shutdown) -> None:
        from nsqcli.cli.timers import first_of

        assert self._failed is not None
        await first_of(shutdown.wait(), self._failed.wait())

    def _on_fatal(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        if self._failed is not None:
            self._failed.set()

    async def _drain(self, pumps: list[asyncio.Task[None]]) -> None:
        """Stop taking; publish what is held; answer it; close (see the module docstring)."""
        closing = [asyncio.ensure_future(reader.close()) for reader in self.readers]
        for lane in self.lanes.values():
            # no new publisher: a message still on its way is published by the open one
            # (and answered before the drain ends), or requeued when none is open
            lane.closing = True
        await asyncio.gather(*pumps, return_exceptions=True)
        await asyncio.gather(*(lane.drain() for lane in self.lanes.values()))
        await asyncio.gather(*closing, return_exceptions=True)

    # ---- timers --------------------------------------------------------------------------------

    def _touch_interval(self) -> float:
        """A quarter of the shortest msg_timeout the source nsqds stated: every held message
        is touched within half of it (a second, until a connection stated one)."""
        timeouts = [conn.identify_response.msg_timeout / 1000 for reader in self.readers
                    for conn in list(reader.conns.values())
                    if conn.identify_response is not None and conn.identify_response.msg_timeout]
        return min(timeouts) / 4 if timeouts else UNKNOWN_TIMEOUT_CHECK

    def _touch(self) -> None:
        touched = sum(lane.touch_held() for lane in self.lanes.values())
        if touched:
            self.console.debug(f"touched {touched} message(s) waiting for the destination")

    def _show_progress(self, meter: Any) -> None:
        held = sum(lane.held for lane in self.lanes.values())
        self.console.progress(self.tally.progress(meter.rate(self.tally.relayed), held))

    def _waiting(self) -> str | None:
        held = sum(lane.held for lane in self.lanes.values())
        if not held:
            return None
        return (f"waiting up to {self.config.retry_timeout:g}s for the destination to answer for "
                f"{held} message(s)")


def _giving_up_hook(relay: Relay, reader: Reader) -> Callable[[Message], None]:
    """The Reader's ``giving_up`` hook (``--consumer-opt max_attempts``): counted and said."""
    def giving_up(message: Message) -> None:
        relay.tally.given_up += 1
        relay.console.warning(
            f"[{reader.topic}/{reader.channel}] giving up on message "
            f"{message.id.decode(errors='replace')} after {message.attempts} attempts "
            "(max_attempts): finished without relaying it")

    return giving_up
