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
    # both go idle: they lose RDY, two of the others get RDY 1
    changes = policy.redistribute(conns, now + 11)
    apply(changes)
    check_sum(policy, conns)
    assert conns[0].rdy == conns[1].rdy == 0
    assert sum(c.rdy for c in conns[2:]) == 2
    assert [v for _, v in changes[:2]] == [0, 0]  # lowering first
    # the freshly granted ones are not idle yet, even though they never got a message
    assert policy.redistribute(conns, now + 12) == []
    # over many rounds every connection gets a turn
    seen = set()
    t = now + 12
    for _ in range(30):
        t += 11
        apply(policy.redistribute(conns, t))
        check_sum(policy, conns)
        seen.update(c.name for c in conns if c.rdy)
    assert seen == set("abcde")


def test_redistribution_frees_a_busy_connection_when_no_budget_left():
    policy = RdyPolicy(2, rng=random.Random(0))
    now = 50.0
    conns = [Conn("a", rdy=1, in_flight=1, last_msg_timestamp=now),
             Conn("b", rdy=1, in_flight=1, last_msg_timestamp=now),
             Conn("c", last_msg_timestamp=now)]
    changes = policy.redistribute(conns, now)
    assert len(changes) == 1 and changes[0][1] == 0 and changes[0][0].name in "ab"


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
