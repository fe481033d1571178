"""nsq-tail -n N: nsqd never sends more messages than are still to be printed.

nsqd sends on a connection while its in-flight count is below the connection's RDY, and a FIN
frees a slot. So a connection ``c`` that was ever allowed ``g`` messages in total (its
*allowance*: RDY plus what it delivered) must see its RDY lowered as it delivers, before the
FINs that would let nsqd refill, or it can deliver more than ``g``; and allowance taken from one
connection cannot be given to another at once, because nsqd may not have read the lowered RDY
yet. The budget therefore keeps, over every connection of every topic:

* ``pool``: allowance not given to any connection; the Reader's RDY decisions pass through
  :meth:`InFlightBudget.cap` (the Reader's ``rdy_cap`` hook), which grants from the pool and
  never lets a connection's RDY exceed its allowance;
* on each message (:meth:`InFlightBudget.received`, called before its FIN): while the pool lasts
  the connection's allowance is topped up from it (RDY unchanged, so throughput is unchanged
  until the last messages); once it is empty the connection's allowance shrinks by one and its
  RDY is lowered to match, on the same connection, before the FIN.

``pool + sum(allowances)`` never exceeds the messages still to be received, so ``-n N`` takes
exactly N messages when the channel has them and nothing has to be requeued (Go's ``nsq_tail``
keeps the extra ones in flight until they time out).

Allowance only moves away from a connection that delivered nothing for ``idle_after`` seconds
while another connection wanted more: its RDY goes to 0 ("parked"), and ``idle_after`` later its
allowance returns to the pool. So the last units cannot stay on an nsqd or topic without
messages. A closed connection's allowance returns to the pool at once.

With several nsqds, nothing is granted until every reader's connections stopped changing for
``settle`` seconds, so that the first nsqd to connect does not get everything. The clock is
injected for tests; connections need ``rdy``, ``send_rdy()`` and ``closed()``.
"""

from __future__ import annotations

import time
from typing import Any, Callable

#: seconds a connection may hold allowance without delivering while another one wants it
IDLE_AFTER = 0.5
#: seconds the readers' connections must stay the same before anything is granted (with hold)
SETTLE = 0.2


class InFlightBudget:
    """The allowances of nsq-tail -n (see the module docstring)."""

    def __init__(self, total: int, *, hold: bool = False, idle_after: float = IDLE_AFTER,
                 settle: float = SETTLE, clock: Callable[[], float] = time.monotonic) -> None:
        self.pool = total
        self.remaining = total  # messages still to be received
        self.idle_after = idle_after
        self.settle = settle
        self._clock = clock
        self.allowance: dict[Any, int] = {}  # connection -> messages it may still deliver
        self._topic_of: dict[Any, str] = {}
        self._active_at: dict[Any, float] = {}  # connection -> last message or grant
        self._parked: dict[Any, float] = {}  # connection -> when its RDY went to 0
        self._starving: set[Any] = set()  # connections cap() refused since the last check
        self._granted_at = clock()
        self._readers: dict[str, Any] = {}  # topic -> its Reader
        # with hold: (connections seen, since when) until they settle
        self._settling: tuple[int, float] | None = (0, clock()) if hold else None

    def attach(self, topic: str, reader: Any) -> None:
        """Route the RDY of ``topic``'s ``reader`` through :meth:`cap` (before it connects)."""
        reader.rdy_cap = lambda conn, value: self.cap(conn, value, topic)
        self._readers[topic] = reader

    # -- the Reader's hook and the messages ---------------------------------------------------

    def cap(self, conn: Any, value: int, topic: str = "") -> int:
        """The RDY ``conn`` (of ``topic``) may have when the Reader wants ``value``: grants
        from the pool."""
        self._topic_of[conn] = topic
        if self._settling is not None or conn in self._parked:
            return 0
        have = self.allowance.get(conn, 0)
        if value > have and self.pool:
            more = min(value - have, self.pool)
            self.pool -= more
            have = self.allowance[conn] = have + more
            self._granted_at = self._active_at[conn] = self._clock()
        if value > have:
            self._starving.add(conn)
        return min(value, have)

    def received(self, topic: str, nsqd_address: str | None) -> None:
        """A message of ``topic`` from the nsqd at ``nsqd_address`` counts towards N: call
        before its FIN is sent."""
        self.remaining = max(0, self.remaining - 1)
        conn = self._conn(topic, nsqd_address)
        if conn is not None:
            self._active_at[conn] = self._clock()
        if self.pool:
            self.pool -= 1  # tops the allowance up: RDY stays where it is
            return
        if conn is None:
            return
        have = self.allowance[conn] = max(0, self.allowance.get(conn, 0) - 1)
        if conn.rdy > have:
            conn.send_rdy(have)

    def _conn(self, topic: str, nsqd_address: str | None) -> Any:
        """The connection a message came from (it may have closed since)."""
        reader = self._readers.get(topic)
        conn = reader.conns.get(nsqd_address) if reader is not None else None
        if conn is None:
            for known in self.allowance:
                if self._topic_of.get(known) == topic and getattr(known, "id", None) == nsqd_address:
                    return known
        return conn

    # -- the periodic check -------------------------------------------------------------------

    def check(self) -> None:
        """Release the hold once connections settled; move allowance away from closed and idle
        connections (see the module docstring)."""
        now = self._clock()
        if self._settling is not None:
            self._settle(now)
            return
        for conn in [c for c in self.allowance if c.closed()]:
            self.pool += self.allowance.pop(conn)
            self._parked.pop(conn, None)
            self._active_at.pop(conn, None)
            self._topic_of.pop(conn, None)
        for conn, since in list(self._parked.items()):
            if now - since >= self.idle_after and self.allowance.get(conn):
                self.pool += self.allowance.pop(conn)  # nsqd read its RDY 0 long ago
                self._granted_at = now  # the others get idle_after to take it
        if self._parked and self.pool and now - self._granted_at >= self.idle_after:
            self._parked.clear()  # nobody wanted what they held: they may ask again
        if self._starving and not self.pool:
            for conn, have in self.allowance.items():
                if (have and conn not in self._parked and self._starving - {conn}
                        and now - self._active_at[conn] >= self.idle_after):
                    self._parked[conn] = now
                    if conn.rdy:
                        conn.send_rdy(0)
        self._starving.clear()

    def _settle(self, now: float) -> None:
        assert self._settling is not None
        seen, since = self._settling
        count = sum(len(reader.conns) for reader in self._readers.values())
        if count != seen:
            self._settling = (count, now)
        elif count and now - since >= self.settle:
            self._settling = None
            for reader in self._readers.values():  # each asks cap() again for its connections
                reader.set_max_in_flight(reader.max_in_flight)
