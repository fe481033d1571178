"""InFlightBudget (nsq-tail -n): nsqd can never send more than N messages in total, even with
RDY read late, FINs freeing slots, and several connections -- checked against a model of nsqd."""

import random
from collections import deque

from nsqcli.tail.budget import InFlightBudget


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Conn:
    """Our side of a connection, plus a model of nsqd's side that reads our commands late."""

    def __init__(self, address, messages=0):
        self.id = address
        self.rdy = 0
        self.sent_rdy = []
        self.commands = deque()  # written by us, not yet read by nsqd
        self.nsqd_rdy = 0
        self.nsqd_in_flight = 0
        self.available = messages  # messages nsqd has for this connection
        self.in_transit = 0  # sent by nsqd, not yet received
        self.delivered = 0
        self.is_closed = False

    def send_rdy(self, value):
        self.rdy = value
        self.sent_rdy.append(value)
        self.commands.append(("RDY", value))

    def fin(self):
        self.commands.append(("FIN", 1))

    def closed(self):
        return self.is_closed

    # nsqd's side
    def nsqd_reads_one(self):
        kind, value = self.commands.popleft()
        if kind == "RDY":
            self.nsqd_rdy = value
        else:
            self.nsqd_in_flight -= 1

    def nsqd_sends_one(self):
        if self.available and self.nsqd_in_flight < self.nsqd_rdy:
            self.available -= 1
            self.nsqd_in_flight += 1
            self.in_transit += 1
            self.delivered += 1


class Reader:
    def __init__(self, conns):
        self.conns = {c.id: c for c in conns}
        self.rdy_cap = None
        self.max_in_flight = 0

    def set_max_in_flight(self, value):
        self.max_in_flight = value

    def want(self, conn, value):
        """What ReaderCore._apply does with the policy's wish for ``conn``."""
        value = self.rdy_cap(conn, value) if value else value
        if value != conn.rdy:
            conn.send_rdy(value)


def make(total, conns, hold=False):
    clock = Clock()
    budget = InFlightBudget(total, hold=hold, idle_after=1.0, settle=0.2, clock=clock)
    reader = Reader(conns)
    budget.attach("t", reader)
    return budget, reader, clock


def test_one_connection_keeps_its_rdy_until_the_pool_runs_out_then_lowers_it():
    conn = Conn("a:1")
    budget, reader, _ = make(10, [conn])
    reader.want(conn, 4)
    assert conn.sent_rdy == [4] and budget.pool == 6
    for _ in range(6):
        budget.received("t", "a:1")
    assert conn.sent_rdy == [4]  # topped up from the pool: no RDY per message
    for expected in (3, 2, 1, 0):
        budget.received("t", "a:1")
        assert conn.sent_rdy[-1] == expected
    assert budget.remaining == 0 and budget.pool == 0


def test_cap_never_grants_more_than_the_pool():
    a, b = Conn("a:1"), Conn("b:1")
    budget, reader, _ = make(5, [a, b])
    reader.want(a, 4)
    reader.want(b, 4)
    assert (a.rdy, b.rdy, budget.pool) == (4, 1, 0)


def test_an_idle_connections_allowance_moves_to_a_starving_one_only_after_it_read_rdy_0():
    idle, busy = Conn("idle:1"), Conn("busy:1")
    budget, reader, clock = make(6, [idle, busy])
    reader.want(idle, 3)
    reader.want(busy, 3)
    for _ in range(3):
        budget.received("t", "busy:1")
    assert busy.rdy == 0
    reader.want(busy, 3)  # the Reader's next tick: refused
    clock.now = 1.0
    budget.check()
    assert idle.sent_rdy == [3, 0]  # parked
    reader.want(busy, 3)
    assert busy.rdy == 0  # its allowance is not free yet: nsqd may not have read RDY 0
    clock.now = 1.5
    budget.check()
    reader.want(busy, 3)
    assert busy.rdy == 0
    clock.now = 2.0
    budget.check()
    reader.want(busy, 3)
    assert busy.rdy == 3 and budget.allowance[busy] == 3


def test_a_closed_connections_allowance_returns_to_the_pool():
    gone, other = Conn("gone:1"), Conn("other:1")
    budget, reader, _ = make(4, [gone, other])
    reader.want(gone, 4)
    gone.is_closed = True
    del reader.conns["gone:1"]
    budget.received("t", "gone:1")  # a message it delivered before closing
    budget.check()
    assert budget.pool == 3
    reader.want(other, 4)
    assert other.rdy == 3


def test_nothing_is_granted_until_the_connections_settle():
    a, b = Conn("a:1"), Conn("b:1")
    budget, reader, clock = make(8, [a], hold=True)
    reader.want(a, 8)
    assert a.rdy == 0
    budget.check()  # one connection seen
    clock.now = 0.1
    reader.conns["b:1"] = b  # a second one connects
    budget.check()
    clock.now = 0.25
    budget.check()
    assert reader.max_in_flight == 0  # not settled yet
    clock.now = 0.35
    budget.check()
    reader.want(a, 4)
    reader.want(b, 4)
    assert (a.rdy, b.rdy) == (4, 4)


def simulate(rng, total, spread, steps=20_000):
    """Random interleavings of nsqd reading commands late, sending, and us receiving and
    FINing in batches; returns (delivered, received) -- delivered never exceeds total.

    The one timing assumption the budget makes is modelled: what is written on a connection
    is read by nsqd, and what nsqd sent has arrived, before the clock moves on (within 50 ms,
    where the budget waits 1 s before it relies on a lowered RDY)."""
    conns = [Conn(f"n{i}:1", messages) for i, messages in enumerate(spread)]
    budget, reader, clock = make(total, conns, hold=len(conns) > 1)
    received, unanswered = 0, []
    share = max(1, rng.randint(1, total) // len(conns))

    def receive(conn):
        nonlocal received
        conn.in_transit -= 1
        if received < total:
            received += 1
            budget.received("t", conn.id)
            unanswered.append(conn)

    for _ in range(steps):
        step = rng.random()
        conn = rng.choice(conns)
        if step < 0.25 and conn.commands:
            conn.nsqd_reads_one()
        elif step < 0.5:
            conn.nsqd_sends_one()
        elif step < 0.7 and conn.in_transit:
            receive(conn)
        elif step < 0.8 and unanswered:
            for answered in unanswered:  # a batch is written, then FINed
                answered.fin()
            unanswered.clear()
        elif step < 0.9:
            reader.want(conn, share)  # the Reader's policy asks (ramp or tick)
        else:
            for each in conns:  # time passes: everything in flight on the wire lands
                while each.commands:
                    each.nsqd_reads_one()
                while each.in_transit:
                    receive(each)
            clock.now += rng.choice([0.05, 0.3])
            budget.check()
        assert sum(c.delivered for c in conns) <= total
    return sum(c.delivered for c in conns), received


def test_nsqd_never_sends_more_than_n_whatever_the_timing():
    rng = random.Random(13)
    for _ in range(60):
        total = rng.randint(1, 30)
        spread = [rng.randint(0, 40) for _ in range(rng.randint(1, 3))]
        delivered, received = simulate(rng, total, spread)
        assert delivered == received <= total
        if sum(spread) >= total:
            assert received == total, (total, spread)  # and it gets there


def test_an_idle_connection_that_wants_more_still_gives_way():
    """Both want more than they have; the one that stopped receiving passes its allowance on."""
    done, waiting = Conn("done:1"), Conn("waiting:1")
    budget, reader, clock = make(7, [done, waiting])
    reader.want(done, 4)
    for _ in range(5):  # the pool tops it up 3 times, then it uses 2 of its 4
        budget.received("t", "done:1")
    assert budget.allowance[done] == 2 and budget.pool == 0
    clock.now = 1.0
    reader.want(done, 4)  # its Reader still asks for its share
    reader.want(waiting, 4)
    budget.check()
    assert done.rdy == 0  # parked although it wants more: it is not using what it has
    clock.now = 2.0
    budget.check()
    reader.want(waiting, 4)
    assert waiting.rdy == 2
