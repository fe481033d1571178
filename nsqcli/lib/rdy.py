"""The Reader's RDY policy, pure: it reads connection state and says which RDY to send.

Every method takes the current connections (objects with ``rdy``, ``in_flight``,
``max_rdy_count`` and ``last_msg_timestamp``) and returns a list of ``(conn, new_rdy)`` changes,
lowering RDY before raising it so that the sum announced to the nsqds never exceeds
``max_in_flight`` on the wire. It never returns a change whose value equals the connection's
current RDY (so no RDY is re-sent unchanged), and never exceeds a connection's ``max_rdy_count``.

The rules, and whose they are:

* each connection's share is ``max_in_flight // connections`` (at least 1), sent right after SUB
  within what the other connections leave of the budget (go-nsq sends the share after SUB too;
  pynsq sent RDY 1 and ramped up);
* when connections outnumber ``max_in_flight`` (or while backing off with several connections),
  :meth:`redistribute` runs every ``rdy_redistribute_interval``, as in go-nsq and pynsq. In one
  round: a connection that received no message for ``low_rdy_idle_timeout`` gives its RDY up
  (go-nsq's test, on the last message only); the freed budget goes at once to connections
  waiting with RDY 0 and nothing in flight, picked at random but never one that was found idle
  in this same round; connections with messages in flight count against the budget (pynsq's
  rule, so a slow handler does not take more than ``max_in_flight`` messages). When nothing is
  left to hand out and a connection waits, a connection that has held its RDY for longer than
  ``low_rdy_timeout`` hands it over to a waiting one in the same round (go-nsq gives RDY up after
  ``low_rdy_timeout`` too; pynsq took RDY from a busy connection every round and gave it to
  nobody before the next round, which left RDY 0 half the time);
* while backing off, one connection tests the waters with RDY 1; if that probe is lost (the
  Reader was paused and resumed, or the probing connection closed) a round gives RDY 1 again;
* ``max_in_flight == 0`` pauses: every RDY goes to 0 and nothing is raised.
"""

from __future__ import annotations

import random
from typing import Iterable, Protocol, Sequence, TypeVar

__all__ = ["RdyConn", "RdyPolicy", "STARVED_RATIO"]

#: is_starved(): a connection is starved when in_flight reaches this fraction of its last RDY.
STARVED_RATIO = 0.85


class RdyConn(Protocol):
    rdy: int
    last_rdy: int
    in_flight: int
    max_rdy_count: int
    last_msg_timestamp: float


C = TypeVar("C", bound=RdyConn)
Changes = list  # list[tuple[C, int]], lowest first


def _ordered(conns: Iterable[C], target: dict[int, int]) -> list[tuple[C, int]]:
    """Changes from ``target`` (keyed by id(conn)), decreases first, unchanged ones dropped."""
    lower: list[tuple[C, int]] = []
    raise_: list[tuple[C, int]] = []
    for conn in conns:
        value = target.get(id(conn), conn.rdy)
        if value < conn.rdy:
            lower.append((conn, value))
        elif value > conn.rdy:
            raise_.append((conn, value))
    return lower + raise_


class RdyPolicy:
    """See the module docstring. ``rng`` picks connections in redistribution (inject for tests)."""

    def __init__(
        self,
        max_in_flight: int,
        low_rdy_idle_timeout: float = 10.0,
        rng: random.Random | None = None,
        low_rdy_timeout: float = 30.0,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.low_rdy_idle_timeout = low_rdy_idle_timeout
        self.low_rdy_timeout = low_rdy_timeout
        self.need_redistribute = False
        self._rng = rng or random.Random()
        # since when each connection holds RDY, as redistribution rounds saw it (id(conn) -> now)
        self._held_since: dict[int, float] = {}

    # ---- queries ------------------------------------------------------------------------

    def share(self, n_conns: int) -> int:
        """Each connection's RDY when ``n_conns`` connections split ``max_in_flight``."""
        if self.max_in_flight <= 0:
            return 0
        return max(1, self.max_in_flight // max(1, n_conns))

    def target(self, conn: RdyConn, n_conns: int) -> int:
        return min(self.share(n_conns), conn.max_rdy_count)

    def redistributing(self, n_conns: int) -> bool:
        """True when there are more connections than RDY to give (each gets 0 or 1)."""
        return 0 < self.max_in_flight < n_conns

    @staticmethod
    def total(conns: Iterable[RdyConn]) -> int:
        return sum(conn.rdy for conn in conns)

    @staticmethod
    def is_starved(conns: Iterable[RdyConn]) -> bool:
        """pynsq's rule: some connection has in_flight > 0 and >= 85 % of its last RDY."""
        return any(c.in_flight > 0 and c.in_flight >= c.last_rdy * STARVED_RATIO for c in conns)

    # ---- decisions ----------------------------------------------------------------------

    def connection_added(
        self, conns: Sequence[C], new: C, in_backoff: bool = False, blocked: bool = False
    ) -> list[tuple[C, int]]:
        """``new`` (already in ``conns``) finished SUB: lower others to the new share, then give
        ``new`` its share within the remaining budget. While backing off it gets RDY 1 only if
        no window is running and nobody else is testing the waters."""
        if self.max_in_flight <= 0:
            return []
        if in_backoff:
            if blocked or any(c.rdy or c.in_flight for c in conns if c is not new):
                return []
            return _ordered(conns, {id(new): min(1, new.max_rdy_count)})
        share = self.share(len(conns))
        target: dict[int, int] = {}
        total = 0
        for conn in conns:
            if conn is new:
                continue
            value = min(conn.rdy, share)
            target[id(conn)] = value
            total += value
        budget = max(0, self.max_in_flight - total)
        target[id(new)] = min(share, new.max_rdy_count, budget)
        if target[id(new)] == 0:
            self.need_redistribute = True
        return _ordered(conns, target)

    def connection_removed(self, conn: RdyConn, remaining: Sequence[RdyConn], in_backoff: bool) -> None:
        """A connection closed: if it held RDY that others cannot take by ramping, redistribute."""
        self._held_since.pop(id(conn), None)
        if conn.rdy and (in_backoff or len(remaining) >= self.max_in_flight):
            self.need_redistribute = True
        elif in_backoff and (conn.in_flight or conn.rdy):
            self.need_redistribute = True  # it may have been testing the waters

    def ramp(self, conn: C, conns: Sequence[C]) -> int | None:
        """After a message on ``conn`` (not in backoff): its new RDY if it is below or above its
        share, within the budget; None when nothing changes. The Reader calls this only when
        ``conn.rdy`` differs from :meth:`target`, so the common case costs nothing."""
        if self.max_in_flight <= 0 or self.redistributing(len(conns)):
            return None
        budget = self.max_in_flight - (self.total(conns) - conn.rdy)
        value = max(0, min(self.target(conn, len(conns)), budget))
        return value if value != conn.rdy else None

    def pause(self, conns: Sequence[C]) -> list[tuple[C, int]]:
        """RDY 0 everywhere (set_max_in_flight(0), or a backoff window starting)."""
        return _ordered(conns, {id(c): 0 for c in conns})

    backoff_started = pause

    def probe(self, conns: Sequence[C]) -> list[tuple[C, int]]:
        """A backoff window ended: RDY 1 on one random connection, 0 on the others."""
        if self.max_in_flight <= 0 or not conns:
            return []
        chosen = self._rng.choice(list(conns))
        target = {id(c): 0 for c in conns}
        target[id(chosen)] = min(1, chosen.max_rdy_count)
        return _ordered(conns, target)

    def rebalance(self, conns: Sequence[C], now: float) -> list[tuple[C, int]]:
        """Every connection to its share (backoff over, max_in_flight changed, periodic check);
        when connections outnumber max_in_flight, a redistribution round instead."""
        if self.max_in_flight <= 0:
            return self.pause(conns)
        if self.redistributing(len(conns)):
            self.need_redistribute = True
            return self.redistribute(conns, now)
        share = self.share(len(conns))
        target = {id(c): min(c.rdy, share, c.max_rdy_count) for c in conns}
        budget = self.max_in_flight - sum(target.values())
        for conn in conns:
            want = min(share, conn.max_rdy_count)
            extra = min(want - target[id(conn)], budget)
            if extra > 0:
                target[id(conn)] += extra
                budget -= extra
        return _ordered(conns, target)

    def redistribute(
        self, conns: Sequence[C], now: float, in_backoff: bool = False, blocked: bool = False
    ) -> list[tuple[C, int]]:
        """One periodic redistribution round (see the module docstring). Runs when connections
        outnumber max_in_flight, when backing off with several connections or with the probe
        lost, or when flagged."""
        if not conns or self.max_in_flight <= 0 or blocked:
            return []
        probe_lost = in_backoff and not any(c.rdy or c.in_flight for c in conns)
        if self.redistributing(len(conns)) or (in_backoff and len(conns) > 1) or probe_lost:
            self.need_redistribute = True
        if not self.need_redistribute:
            return []
        self.need_redistribute = False
        rng = self._rng
        rdy = {id(c): c.rdy for c in conns}
        if sum(rdy.values()) > self.max_in_flight:  # max_in_flight was lowered: RDY 1 at most
            pool = list(conns)
            rng.shuffle(pool)
            for index, conn in enumerate(pool):
                rdy[id(conn)] = min(1, conn.max_rdy_count) if index < self.max_in_flight else 0
        held = self._held_since
        idle = set()
        for conn in conns:
            key = id(conn)
            if not rdy[key]:
                held.pop(key, None)
            elif now - conn.last_msg_timestamp > self.low_rdy_idle_timeout:
                rdy[key] = 0  # idle with RDY: give it up
                idle.add(key)
                held.pop(key, None)
            else:
                held.setdefault(key, now)
        budget = (1 if in_backoff else self.max_in_flight) - sum(
            1 for c in conns if rdy[id(c)] or c.in_flight)
        waiting = [c for c in conns if not rdy[id(c)] and not c.in_flight and id(c) not in idle]
        if budget <= 0 and waiting:
            # nothing to hand out: RDY held too long moves to a waiting connection, now
            overdue = [c for c in conns if rdy[id(c)] and now - held[id(c)] > self.low_rdy_timeout]
            rng.shuffle(overdue)
            for conn in overdue[:len(waiting)]:
                rdy[id(conn)] = 0
                held.pop(id(conn), None)
                budget = max(budget, 0) + 1
        while waiting and budget > 0:
            conn = waiting.pop(rng.randrange(len(waiting)))
            rdy[id(conn)] = min(1, conn.max_rdy_count)
            held[id(conn)] = now
            budget -= 1
        return _ordered(conns, rdy)

    def forget(self, conn: RdyConn) -> None:
        self._held_since.pop(id(conn), None)
