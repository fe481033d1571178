"""Pure tests of the RDY policy: no network, no clock (``now`` is passed in)."""

import random
from dataclasses import dataclass

import pytest

from nsqcli.lib.rdy import RdyPolicy


@dataclass(eq=False)
class Conn:
    name: str
    rdy: int = 0
    in_flight: int = 0
    max_rdy_count: int = 2500
    last_msg_timestamp: float = 0.0
    last_rdy: int = 0

    def __repr__(self):
        return self.name


def apply(changes):
    """Apply changes one by one, checking the wire invariant after each."""
    for conn, value in changes:
        assert value != conn.rdy, "an unchanged RDY was sent"
        conn.rdy = conn.last_rdy = value


def names(changes):
    return [(c.name, v) for c, v in changes]


def add(policy, conns, new, **kw):
    conns.append(new)
    changes = policy.connection_added(conns, new, **kw)
    return changes


def check_sum(policy, conns):
    assert sum(c.rdy for c in conns) <= policy.max_in_flight
    assert all(c.rdy <= c.max_rdy_count for c in conns)


def test_share():
    policy = RdyPolicy(10)
    assert [policy.share(n) for n in (0, 1, 2, 3, 10, 11)] == [10, 10, 5, 3, 1, 1]
    assert RdyPolicy(0).share(3) == 0


def test_new_connections_get_their_share_and_others_are_lowered_first():
    policy, conns = RdyPolicy(10), []
    a, b, c = Conn("a"), Conn("b"), Conn("c")
    changes = add(policy, conns, a)
    assert names(changes) == [("a", 10)]
    apply(changes)
    changes = add(policy, conns, b)
    assert names(changes) == [("a", 5), ("b", 5)]  # lowering comes first on the wire
    apply(changes)
    changes = add(policy, conns, c)
    assert names(changes) == [("a", 3), ("b", 3), ("c", 3)]
    apply(changes)
    check_sum(policy, conns)


def test_new_connection_respects_max_rdy_count_and_budget():
    policy, conns = RdyPolicy(5000), []
    small = Conn("small", max_rdy_count=200)
    apply(add(policy, conns, small))
    assert small.rdy == 200
    policy2, conns2 = RdyPolicy(2), []
    apply(add(policy2, conns2, Conn("a")))
    apply(add(policy2, conns2, Conn("b")))
    third = Conn("c")
    changes = add(policy2, conns2, third)
    # 3 connections, max_in_flight 2: a and b are already at their share of 1, no budget left
    assert names(changes) == []
    assert policy2.need_redistribute
    check_sum(policy2, conns2)


def test_new_connection_during_backoff():
    policy, conns = RdyPolicy(10), []
    first = Conn("a")
    # a window is running: nothing
    assert add(policy, conns, first, in_backoff=True, blocked=True) == []
    # window over and nobody testing the waters: the newcomer probes with RDY 1
    second = Conn("b")
    assert names(add(policy, conns, second, in_backoff=True)) == [("b", 1)]
    second.rdy = 1
    assert add(policy, conns, Conn("c"), in_backoff=True) == []


def test_paused_policy_gives_nothing_and_pause_zeroes_everything():
    policy, conns = RdyPolicy(0), []
    assert add(policy, conns, Conn("a")) == []
    active = [Conn("a", rdy=3), Conn("b", rdy=0), Conn("c", rdy=2)]
    assert names(RdyPolicy(5).pause(active)) == [("a", 0), ("c", 0)]


def test_ramp_only_when_below_target_and_within_budget():
    policy = RdyPolicy(10)
    a, b = Conn("a", rdy=1), Conn("b", rdy=5)
    assert policy.ramp(a, [a, b]) == 5
    b.rdy = 5
    a.rdy = 5
    assert policy.ramp(a, [a, b]) is None
    # budget limits the ramp: b holds 8 of 10
    a.rdy, b.rdy = 1, 8
    assert policy.ramp(a, [a, b]) == 2
    # no ramp in redistribution mode or when paused
    many = [Conn(str(i), rdy=1) for i in range(12)]
    assert policy.ramp(many[0], many) is None
    assert RdyPolicy(0).ramp(a, [a, b]) is None


def test_rebalance_after_max_in_flight_change():
    conns = [Conn("a", rdy=5), Conn("b", rdy=5)]
    policy = RdyPolicy(4)
    changes = policy.rebalance(conns, now=0)
    assert names(changes) == [("a", 2), ("b", 2)]
    apply(changes)
    policy.max_in_flight = 100
    changes = policy.rebalance(conns, now=0)
    assert names(changes) == [("a", 50), ("b", 50)]
    apply(changes)
    policy.max_in_flight = 0
    assert names(policy.rebalance(conns, now=0)) == [("a", 0), ("b", 0)]


def test_rebalance_caps_at_max_rdy_count():
    conns = [Conn("a", max_rdy_count=3), Conn("b")]
    policy = RdyPolicy(100)
    assert names(policy.rebalance(conns, now=0)) == [("a", 3), ("b", 50)]


def test_probe_gives_one_connection_rdy_1():
    conns = [Conn("a"), Conn("b"), Conn("c")]
    policy = RdyPolicy(10, rng=random.Random(1))
    changes = policy.probe(conns)
    assert len(changes) == 1 and changes[0][1] == 1
    assert RdyPolicy(0).probe(conns) == []
    assert policy.probe([]) == []


def test_redistribution_moves_rdy_from_idle_to_starving_connections():
    policy = RdyPolicy(2, low_rdy_idle_timeout=10, rng=random.Random(5))
    now = 100.0
    conns = [Conn(n, last_msg_timestamp=now) for n in "abcde"]
    conns[0].rdy = conns[1].rdy = 1
    # a and b just received messages: nothing to move
    assert policy.redistribute(conns, now) == []
    # both go idle: they lose RDY, two of the others get RDY 1 in the same round
    changes = policy.redistribute(conns, now + 11)
    apply(changes)
    check_sum(policy, conns)
    assert conns[0].rdy == conns[1].rdy == 0
    assert sum(c.rdy for c in conns[2:]) == 2
    assert [v for _, v in changes[:2]] == [0, 0]  # lowering first
    # idleness counts from the last message only (go-nsq): the granted ones got none in this
    # round, so the next round takes their RDY back and gives it to others
    granted = {c.name for c in conns if c.rdy}
    apply(policy.redistribute(conns, now + 12))
    check_sum(policy, conns)
    assert not granted & {c.name for c in conns if c.rdy}
    assert sum(c.rdy for c in conns) == 2
    # over many rounds every connection gets a turn
    seen = set()
    t = now + 12
    for _ in range(30):
        t += 11
        apply(policy.redistribute(conns, t))
        check_sum(policy, conns)
        seen.update(c.name for c in conns if c.rdy)
    assert seen == set("abcde")


def test_rdy_given_up_by_idle_connections_goes_to_a_waiting_one_in_the_same_round():
    # 3 nsqds, max_in_flight 2: two drained long ago, the third has waited with RDY 0. Whatever
    # the random picks, the round that takes the idle RDY gives the waiting nsqd one (pynsq's
    # algorithm could give it back to the idle ones: 15 to 55 s of waiting on a real nsqd).
    for seed in range(50):
        policy = RdyPolicy(2, low_rdy_idle_timeout=10, rng=random.Random(seed))
        a, b = Conn("a", rdy=1, last_msg_timestamp=0.0), Conn("b", rdy=1, last_msg_timestamp=0.0)
        c = Conn("c", last_msg_timestamp=0.0)
        conns = [a, b, c]
        apply(policy.redistribute(conns, 11.0))
        check_sum(policy, conns)
        assert c.rdy == 1 and a.rdy + b.rdy == 0, seed  # the drained ones get none this round


def test_a_busy_connection_keeps_rdy_until_low_rdy_timeout_then_hands_it_over_at_once():
    # 2 nsqds with messages, max_in_flight 1: a handler is always busy on the one with RDY.
    # pynsq took that RDY away and gave it to nobody until the next round (RDY 0 half the time);
    # go-nsq keeps it for low_rdy_timeout, then moves it in the same round.
    policy = RdyPolicy(1, low_rdy_idle_timeout=10, low_rdy_timeout=30, rng=random.Random(3))
    a = Conn("a", rdy=1, in_flight=1)
    b = Conn("b")
    conns = [a, b]
    t = 0.0
    while t <= 30.0:
        a.last_msg_timestamp = t
        assert policy.redistribute(conns, t) == [], t  # a holds RDY 30 s
        t += 5.0
    a.last_msg_timestamp = t
    assert names(policy.redistribute(conns, t)) == [("a", 0), ("b", 1)]  # one round
    apply([(a, 0), (b, 1)])
    # b now delivers and is busy; a finished its message: b keeps RDY for its own 30 s
    b.in_flight, a.in_flight = 1, 0
    for _ in range(6):
        t += 5.0
        b.last_msg_timestamp = t
        assert policy.redistribute(conns, t) == []
    t += 5.0
    b.last_msg_timestamp = t
    assert names(policy.redistribute(conns, t)) == [("b", 0), ("a", 1)]


def test_a_busy_connection_keeps_its_rdy_when_nobody_waits():
    policy = RdyPolicy(2, low_rdy_timeout=30, rng=random.Random(0))
    conns = [Conn("a", rdy=1, in_flight=1), Conn("b", rdy=1, in_flight=1), Conn("c", in_flight=1)]
    for t in (0.0, 40.0, 80.0):
        for conn in conns:
            conn.last_msg_timestamp = t
        assert policy.redistribute(conns, t) == []  # c is busy too: nobody waits


def test_a_lost_backoff_probe_is_given_again():
    # one connection backing off: a pause (or a closed prober) took the probe's RDY 1 away
    policy = RdyPolicy(5, rng=random.Random(1))
    conn = Conn("a", last_msg_timestamp=0.0)
    assert policy.redistribute([conn], 1.0, in_backoff=True, blocked=True) == []  # window runs
    assert names(policy.redistribute([conn], 1.0, in_backoff=True)) == [("a", 1)]
    conn.rdy = 1
    assert policy.redistribute([conn], 2.0, in_backoff=True) == []  # probing: nothing to do
    conn.rdy, conn.in_flight = 0, 1
    assert policy.redistribute([conn], 3.0, in_backoff=True) == []  # its message is in flight
    policy.max_in_flight = 0
    conn.in_flight = 0
    assert policy.redistribute([conn], 4.0, in_backoff=True) == []  # paused


def test_redistribution_strips_excess_rdy_when_total_exceeds_max():
    policy = RdyPolicy(2, rng=random.Random(2))
    now = 10.0
    conns = [Conn(n, rdy=3, last_msg_timestamp=now) for n in "abc"]
    apply(policy.redistribute(conns, now))
    check_sum(policy, conns)
    assert sorted(c.rdy for c in conns) == [0, 1, 1]


def test_redistribution_in_backoff_keeps_a_single_rdy():
    policy = RdyPolicy(10, rng=random.Random(4))
    now = 10.0
    conns = [Conn(n, last_msg_timestamp=now) for n in "abc"]
    assert policy.redistribute(conns, now, in_backoff=True, blocked=True) == []
    changes = policy.redistribute(conns, now, in_backoff=True)
    assert len(changes) == 1 and changes[0][1] == 1
    apply(changes)
    assert policy.redistribute(conns, now + 1, in_backoff=True) == []
    # normal operation with enough budget: no redistribution needed
    assert policy.redistribute(conns, now + 1) == []


def test_connection_removed_flags_redistribution():
    policy = RdyPolicy(2)
    gone = Conn("x", rdy=1)
    policy.connection_removed(gone, [Conn("a"), Conn("b")], in_backoff=False)
    assert policy.need_redistribute
    policy2 = RdyPolicy(10)
    policy2.connection_removed(Conn("x", rdy=5), [Conn("a")], in_backoff=False)
    assert not policy2.need_redistribute
    policy2.connection_removed(Conn("x", rdy=1), [Conn("a")], in_backoff=True)
    assert policy2.need_redistribute
    policy3 = RdyPolicy(10)
    policy3.connection_removed(Conn("x", in_flight=1), [Conn("a"), Conn("b")], in_backoff=True)
    assert policy3.need_redistribute  # its message may have been the probe


@pytest.mark.parametrize(
    "in_flight, last_rdy, starved",
    [(0, 0, False), (0, 10, False), (8, 10, False), (9, 10, True), (1, 1, True), (1, 0, True)],
)
def test_is_starved(in_flight, last_rdy, starved):
    conns = [Conn("idle"), Conn("busy", in_flight=in_flight, last_rdy=last_rdy)]
    assert RdyPolicy.is_starved(conns) is starved


def test_random_sequences_never_break_the_invariants():
    rng = random.Random(1234)
    for _ in range(200):
        policy = RdyPolicy(rng.choice([1, 2, 3, 5, 10, 100]), rng=random.Random(rng.random()))
        conns, now = [], 0.0
        for _ in range(40):
            now += rng.random() * 5
            op = rng.random()
            if op < 0.3 or not conns:
                new = Conn(f"c{len(conns)}", max_rdy_count=rng.choice([1, 3, 2500]), last_msg_timestamp=now)
                apply(add(policy, conns, new))
            elif op < 0.4:
                gone = conns.pop(rng.randrange(len(conns)))
                policy.connection_removed(gone, conns, in_backoff=False)
            elif op < 0.6:
                conn = rng.choice(conns)
                value = policy.ramp(conn, conns)
                if value is not None:
                    apply([(conn, value)])
                conn.last_msg_timestamp = now
            elif op < 0.7:
                policy.max_in_flight = rng.choice([0, 1, 4, 50])
                apply(policy.rebalance(conns, now))
            else:
                apply(policy.redistribute(conns, now))
            check_sum(policy, conns)
