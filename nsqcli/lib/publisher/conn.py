"""One nsqd the publisher sends to: its connection, in-flight window, reconnect loop.

Results go back to the owning :class:`~nsqcli.lib.publisher.engine.PublishEngine` through four calls:
``batch_acknowledged``, ``batch_rejected`` (nsqd answered ``E_*``), ``batch_lost`` (the
connection died first) and ``connection_up``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from nsqcli.lib.addresses import parse_address
from nsqcli.lib.error_text import error_text

if TYPE_CHECKING:  # pragma: no cover
    from .batch import Batch
    from .engine import PublishEngine

RECONNECT_FIRST_DELAY = 0.05
RECONNECT_MAX_DELAY = 1.0

#: ``connect(address, conn_kwargs, timeout)``: a connection that finished its handshake
ConnectFunc = Callable[[str, "dict[str, Any]", float], Awaitable[Any]]


async def connect_nsqd(address: str, conn_kwargs: dict[str, Any], timeout: float) -> Any:
    """An :class:`nsqcli.lib.conn.AsyncConn` to ``address`` that finished its handshake
    within ``timeout`` seconds (TCP connect and every handshake stage together)."""
    from nsqcli.lib.conn import AsyncConn  # lazy: tornado is only imported when we connect
    from nsqcli.lib.conn_options import DEFAULT_TIMEOUT

    host, port = parse_address(address)
    stage_timeout = conn_kwargs.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(stage_timeout, (int, float)) and stage_timeout > timeout:
        # no stage may outlast the whole: a TCP connect that gets no answer then ends (and
        # closes its socket) when wait_ready gives up, so the cleanup below waits no longer
        conn_kwargs = {**conn_kwargs, "timeout": timeout}
    conn = AsyncConn(host, port, **conn_kwargs)
    try:
        await conn.wait_ready(timeout)  # connects (the conn is new: INIT)
    except BaseException:
        # cancelled or failed mid-connect: wait until the attempt ended, so that its socket is
        # closed by us, not left to the GC if the event loop ends next (a second cancellation
        # stops the wait, not the attempt's own end within the stage timeout)
        await asyncio.shield(conn.aclose())
        raise
    return conn


def _is_nsq_error(exc: BaseException) -> bool:
    return hasattr(exc, "code") and hasattr(exc, "description")


class Destination:
    """See the module docstring."""

    def __init__(
        self,
        address: str,
        conn_kwargs: dict[str, Any],
        connect_timeout: float,
        connect: ConnectFunc,
        owner: PublishEngine,
    ) -> None:
        self.address = address
        self._conn_kwargs = conn_kwargs
        self._connect_timeout = connect_timeout
        self._connect = connect
        self._owner = owner
        self.conn: Any = None
        self.up = False
        self.in_flight = 0  # batches sent on the current connection and not answered
        self.queue: deque[Batch] = deque()  # fan-out: batches waiting for this nsqd
        self.down_since: float | None = None
        self.last_error_text = ""
        self.gave_up = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<Destination {self.address} up={self.up} in_flight={self.in_flight}>"

    async def connect_once(self) -> None:
        conn = await self._connect(self.address, self._conn_kwargs, self._connect_timeout)
        if self._closed:
            await conn.aclose()
            return
        self.conn = conn
        self.up = True
        self.down_since = None
        self.gave_up = False
        self.in_flight = 0
        conn.on("close", self._on_close_event)

    def _on_close_event(self, conn: Any = None, **_: Any) -> None:
        if conn is not None and conn is self.conn:
            self.connection_lost(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Mark the nsqd down (its unanswered batches come back via ``batch_lost``) and reconnect."""
        if exc is not None:
            self.last_error_text = error_text(exc)
        old, self.conn = self.conn, None
        self.up = False
        self.in_flight = 0
        if self.down_since is None:
            self.down_since = self._owner.clock()
        if old is not None:
            try:
                old.close()
            except Exception:  # noqa: BLE001 - already broken; closing is best effort
                pass
        if not self._closed and (self._reconnect_task is None or self._reconnect_task.done()):
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = RECONNECT_FIRST_DELAY
        while not self._closed:
            await asyncio.sleep(delay)
            if self._closed:
                return
            try:
                await self.connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means "try again later"
                self.last_error_text = error_text(exc)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
                continue
            if self.up:
                self._owner.log(f"{self.address}: reconnected")
                self._owner.connection_up(self)
            return

    def send(self, batch: Batch) -> None:
        conn = self.conn
        self.in_flight += 1
        kind = b"MPUB" if len(batch.commands) == 1 and batch.commands[0][:4] == b"MPUB" else b"DPUB"
        state: list[Any] = [len(batch.commands), None]  # answers still due, first error
        done = partial(self._answered, conn, batch, state)
        for command in batch.commands:
            try:
                future = conn.publish_raw(command, kind=kind)
            except Exception as exc:  # noqa: BLE001 - a dead connection refuses writes
                future = asyncio.get_running_loop().create_future()
                future.set_exception(exc)
            future.add_done_callback(done)

    def _answered(self, conn: Any, batch: Batch, state: list[Any], future: Any) -> None:
        if future.cancelled():
            error: BaseException | None = asyncio.CancelledError()
        else:
            error = future.exception()
        if error is not None and state[1] is None:
            state[1] = error
        state[0] -= 1
        if state[0]:
            return
        current = conn is self.conn
        if current:
            self.in_flight -= 1
        error = state[1]
        if error is None:
            self._owner.batch_acknowledged(self, batch)
            return
        if current:  # nsqd closes the connection after any E_* on a publish, and so do we
            self.connection_lost(error)
        if _is_nsq_error(error):
            self._owner.batch_rejected(self, batch, error)
        else:
            self._owner.batch_lost(self, batch, error)

    async def shutdown(self) -> None:
        """Stop reconnecting and close; returns once no connect attempt of ours is running."""
        self._closed = True
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # its connect_nsqd cleans up
        conn, self.conn = self.conn, None
        self.up = False
        if conn is not None:
            await conn.aclose()
