"""The Writer's connections: one supervised link per nsqd address, reconnecting with backoff.

Each link runs one task: connect, wait for the handshake, hand the connection to the Writer, wait
until it closes, tell the Writer, sleep the link's reconnect backoff and start over. The delay is
exponential with jitter: ~0.1 s for the first retry, doubling up to the Writer's
``reconnect_interval`` (pynsq's fixed delay becomes the cap).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from typing import TYPE_CHECKING, Mapping

from .addresses import format_address
from .backoff import ReconnectBackoff
from .protocol.errors import ConnectionClosedError

if TYPE_CHECKING:  # pragma: no cover
    from .conn import AsyncConn
    from .conn_options import ConnKwargs
    from .writer import Writer

logger = logging.getLogger("nsqcli.lib.writer")

#: First reconnect delay (seconds) before jitter; doubles per consecutive failure.
RECONNECT_BASE = 0.1


def new_reconnect_backoff(cap: float, rng: random.Random | None = None) -> ReconnectBackoff:
    """~0.1 s for the first retry, doubling (with +/-25% jitter) up to ``cap`` seconds."""
    return ReconnectBackoff(initial=min(RECONNECT_BASE, cap), maximum=cap, jitter=0.25, rng=rng)


def _conn_class() -> type[AsyncConn]:
    from .conn import AsyncConn

    return AsyncConn


def check_conn_kwargs(kwargs: Mapping[str, object], conn_class: type[AsyncConn], owner: str) -> None:
    """Reject keyword arguments the connection class does not take, naming them (pynsq asserted)."""
    params = inspect.signature(conn_class.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - (set(params) - {"self", "host", "port"}))
    if unknown:
        raise TypeError(f"{owner}: unexpected keyword argument(s) {', '.join(unknown)} "
                        f"(not accepted by {conn_class.__name__})")


class Link:
    """One nsqd address and the state of its connection."""

    __slots__ = ("host", "port", "address", "conn", "backoff", "task", "last_error", "failure_text")

    def __init__(self, host: str, port: int, reconnect_interval: float) -> None:
        self.host = host
        self.port = port
        self.address = format_address(host, port)
        self.conn: AsyncConn | None = None
        self.backoff = new_reconnect_backoff(reconnect_interval)
        self.task: asyncio.Task[None] | None = None
        self.last_error: BaseException | None = None
        self.failure_text: str | None = None  # the failure last warned about, until it connects


class LinkSupervisor:
    """Owns the links of one Writer; calls ``writer._on_link_ready`` / ``_on_link_lost``."""

    def __init__(self, writer: "Writer", conn_kwargs: ConnKwargs,
                 conn_class: type[AsyncConn] | None = None) -> None:
        self.writer = writer
        self.conn_class = conn_class or _conn_class()
        check_conn_kwargs(conn_kwargs, self.conn_class, "Writer")
        self.conn_kwargs = conn_kwargs
        self.links: dict[str, Link] = {}
        self.stopped = False

    def add(self, host: str, port: int) -> Link | None:
        link = Link(host, port, self.writer.reconnect_interval)
        if link.address in self.links:
            return None
        self.links[link.address] = link
        return link

    def start_all(self) -> None:
        for link in self.links.values():
            self.start(link)

    def start(self, link: Link) -> None:
        if link.task is None and not self.stopped:
            link.task = asyncio.get_running_loop().create_task(self._maintain(link))

    def stop_all(self) -> None:
        self.stopped = True
        for link in self.links.values():
            if link.task is not None:
                link.task.cancel()
                link.task = None
            if link.conn is not None:
                link.conn.close()

    async def connections_ended(self) -> None:
        """After stop_all(): until every connection's connect attempt ended (see AsyncConn.aclose)."""
        conns = [link.conn for link in self.links.values() if link.conn is not None]
        await asyncio.gather(*(conn.aclose() for conn in conns), return_exceptions=True)

    def last_error(self) -> BaseException | None:
        errors = [link.last_error for link in self.links.values() if link.last_error is not None]
        return errors[-1] if errors else None

    async def _maintain(self, link: Link) -> None:
        writer = self.writer
        loop = asyncio.get_running_loop()
        while not self.stopped:
            conn = self.conn_class(link.host, link.port, **self.conn_kwargs)
            conn.repeated_failure_text = link.failure_text
            closed: asyncio.Future[BaseException | None] = loop.create_future()
            link.conn = conn
            self._listen(link, conn, closed)
            try:
                await conn.wait_ready()  # connects; each handshake stage is bounded by `timeout`
            except asyncio.CancelledError:
                conn.close()
                raise
            except Exception as exc:  # refused, timed out, handshake failed: retry later
                link.conn = None
                link.last_error = exc
                conn.close()
                delay = link.backoff.next_delay()
                repeated = str(exc) == link.failure_text  # warned already: debug until it changes
                link.failure_text = str(exc)
                logger.log(logging.DEBUG if repeated else logging.WARNING,
                           "[%s:%s] cannot connect (%s); retrying in %.2fs",
                           link.address, writer.name, exc, delay)
                await asyncio.sleep(delay)
                continue
            up_since = loop.time()
            if link.failure_text is not None:
                logger.info("[%s:%s] connected again after %d retries", link.address,
                            writer.name, link.backoff.attempts)
                link.failure_text = None
            else:
                logger.info("[%s:%s] connected", link.address, writer.name)
            writer._on_link_ready(link, conn)
            try:
                await closed
            except asyncio.CancelledError:  # stop_all(), or asyncio.run() ending without close()
                conn.close()
                raise
            finally:
                link.conn = None
            if self.stopped:
                return
            if loop.time() - up_since >= writer.reconnect_interval:
                link.backoff.reset()  # it was healthy for a while: start the backoff over
            lost = ConnectionClosedError(f"connection to {link.address} closed"
                                         + (f": {closed.result()}" if closed.result() else ""))
            lost.__cause__ = closed.result()
            link.last_error = lost
            delay = link.backoff.next_delay()
            logger.warning("[%s:%s] connection lost (%s); reconnecting in %.2fs",
                           link.address, writer.name, closed.result() or "closed", delay)
            await asyncio.sleep(delay)

    def _listen(self, link: Link, conn: AsyncConn, closed: asyncio.Future[BaseException | None]) -> None:
        writer = self.writer
        last_error: list[BaseException] = []

        def on_close(**kwargs: object) -> None:
            writer._on_link_lost(link, conn)  # at once, so that no publish picks this conn
            if not closed.done():
                closed.set_result(last_error[-1] if last_error else None)

        def on_error(error: BaseException | None = None, **kwargs: object) -> None:
            if error is not None:  # AsyncConn logs it; keep it as the reason of the close
                last_error.append(error)

        def on_heartbeat(**kwargs: object) -> None:
            writer.heartbeat(conn)

        conn.on("close", on_close)
        conn.on("error", on_error)
        conn.on("heartbeat", on_heartbeat)

