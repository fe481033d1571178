"""The admin plan, without network: which calls go to which nsqd and nsqlookupd, what each
answer means, and when the command fails (nsqcli/admin/plan.py)."""

from __future__ import annotations

import pytest

from nsqcli.admin.plan import (
    ABSENT, CREATE, DELETE, DONE, EMPTY, FAILED, KEPT, LOOKUPD, NSQD, PAUSE, UNPAUSE, Call,
    LookupAnswer, Outcome, Subject, absent, confirmation, discovery, dry_run_lines, judge, kept,
    lookupds_to_ask, plan, verdict,
)

TOPIC = Subject("events")
CHANNEL = Subject("events", "audit")
A, B, C = "10.0.0.1:4151", "10.0.0.2:4151", "10.0.0.3:4151"
L1, L2 = "10.0.0.9:4161", "10.0.0.8:4161"


def calls(steps):
    return {(step.daemon, step.address): [str(call) for call in step.calls] for step in steps}


def test_subjects_say_what_they_are():
    assert str(TOPIC) == "topic events" and TOPIC.query() == (("topic", "events"),)
    assert str(CHANNEL) == "channel audit of topic events"
    assert CHANNEL.query() == (("topic", "events"), ("channel", "audit"))


@pytest.mark.parametrize("action, subject, all_nodes, expected", [
    # (nsqlookupd /lookup, nsqlookupd /nodes, the given nsqds' /stats)
    (CREATE, TOPIC, False, (False, False, False)),  # a new topic has no producers to find
    (CREATE, TOPIC, True, (False, True, False)),
    (CREATE, CHANNEL, False, (True, False, False)),  # the topic's producers get the channel
    (CREATE, CHANNEL, True, (True, True, False)),
    (DELETE, TOPIC, False, (True, False, True)),
    (EMPTY, CHANNEL, False, (True, False, True)),
    (PAUSE, TOPIC, True, (True, False, True)),  # --all-nodes is for create only
])
def test_what_is_asked_before_planning(action, subject, all_nodes, expected):
    assert discovery(action, subject, all_nodes) == expected


@pytest.mark.parametrize("action", [EMPTY, PAUSE, UNPAUSE])
def test_empty_and_pause_act_on_nsqds_only(action):
    answers = {L1: LookupAnswer((A, B)), L2: LookupAnswer((B, C))}
    planned = plan(action, TOPIC, [C], [L1, L2], answers)
    # given nsqds first, then each producer once, in the order found
    assert calls(planned.nsqd_steps) == {
        (NSQD, address): [f"POST /topic/{action}?topic=events"] for address in (C, A, B)}
    assert [s.address for s in planned.nsqd_steps] == [C, A, B]
    assert planned.lookupd_steps == ()
    channel = plan(action, CHANNEL, [A], [])
    assert calls(channel.nsqd_steps) == {
        (NSQD, A): [f"POST /channel/{action}?topic=events&channel=audit"]}


def test_create_topic_registers_it_in_every_lookupd_and_creates_it_on_the_nsqds():
    planned = plan(CREATE, TOPIC, [A], [L1, L2])
    assert calls(planned.nsqd_steps) == {(NSQD, A): ["POST /topic/create?topic=events"]}
    assert calls(planned.lookupd_steps) == {
        (LOOKUPD, L1): ["POST /topic/create?topic=events"],
        (LOOKUPD, L2): ["POST /topic/create?topic=events"]}
    with_nodes = plan(CREATE, TOPIC, [], [L1], nodes=[A, B])
    assert [s.address for s in with_nodes.nsqd_steps] == [A, B]


def test_create_channel_creates_its_topic_first_on_each_nsqd():
    answers = {L1: LookupAnswer((B,)), L2: LookupAnswer(known=False)}
    planned = plan(CREATE, CHANNEL, [A], [L1, L2], answers)
    both = ["POST /topic/create?topic=events", "POST /channel/create?topic=events&channel=audit"]
    assert calls(planned.nsqd_steps) == {(NSQD, A): both, (NSQD, B): both}
    # registered in the lookupds that answered, the one without the topic too (it adds it)
    assert calls(planned.lookupd_steps) == {
        (LOOKUPD, L1): ["POST /channel/create?topic=events&channel=audit"],
        (LOOKUPD, L2): ["POST /channel/create?topic=events&channel=audit"]}
    failed_lookupd = plan(CREATE, CHANNEL, [], [L1, L2], {L1: LookupAnswer((B,))})
    assert [s.address for s in failed_lookupd.lookupd_steps] == [L1]


def test_delete_removes_the_registration_where_lookupd_has_it():
    answers = {L1: LookupAnswer((A,), ("audit",)), L2: LookupAnswer(known=False)}
    topic = plan(DELETE, TOPIC, [], [L1, L2], answers)
    assert calls(topic.nsqd_steps) == {(NSQD, A): ["POST /topic/delete?topic=events"]}
    assert calls(topic.lookupd_steps) == {(LOOKUPD, L1): ["POST /topic/delete?topic=events"],
                                          (LOOKUPD, L2): []}
    assert topic.lookupds_last
    channel = plan(DELETE, CHANNEL, [], [L1, L2],
                   {L1: LookupAnswer((A,), ("other",)), L2: LookupAnswer((), ("audit",))})
    assert calls(channel.lookupd_steps) == {
        (LOOKUPD, L1): [], (LOOKUPD, L2): ["POST /channel/delete?topic=events&channel=audit"]}


def test_a_given_nsqd_without_the_subject_is_not_asked_to_act():
    answers = {L1: LookupAnswer((B,))}
    planned = plan(PAUSE, TOPIC, [A, B, C], [L1], answers, nsqd_has={A: False, B: False})
    # A said it has none; B too, but lookupd lists it (asked anyway); C did not answer /stats
    assert calls(planned.nsqd_steps) == {(NSQD, A): [], (NSQD, B): ["POST /topic/pause?topic=events"],
                                         (NSQD, C): ["POST /topic/pause?topic=events"]}
    assert [s.address for s in planned.acting_steps] == [B, C]
    (line,) = [o.line for o in [absent(planned, planned.nsqd_steps[0])]]
    assert line == "nsqd 10.0.0.1:4151: has no topic events"


def test_an_unknown_action_is_a_bug():
    with pytest.raises(ValueError):
        plan("explode", TOPIC, [A], [])


def _step(planned, address):
    return next(s for s in planned.nsqd_steps + planned.lookupd_steps if s.address == address)


@pytest.mark.parametrize("status, text, result, line", [
    (200, "", DONE, "nsqd 10.0.0.1:4151: paused channel audit of topic events"),
    (404, "CHANNEL_NOT_FOUND", ABSENT, "nsqd 10.0.0.1:4151: has no channel audit of topic events"),
    (404, "TOPIC_NOT_FOUND", ABSENT, "nsqd 10.0.0.1:4151: has no topic events"),
    (500, "INTERNAL_ERROR", FAILED,
     "nsqd 10.0.0.1:4151: pause channel audit of topic events failed: HTTP 500 INTERNAL_ERROR"),
    (404, "NOT_FOUND", FAILED,  # not nsqd's answer about the channel: an old nsqd, a proxy
     "nsqd 10.0.0.1:4151: pause channel audit of topic events failed: HTTP 404 NOT_FOUND"),
    (None, "connection refused", FAILED,
     "nsqd 10.0.0.1:4151: pause channel audit of topic events failed: connection refused"),
])
def test_what_an_nsqd_answer_means(status, text, result, line):
    planned = plan(PAUSE, CHANNEL, [A], [])
    outcome = judge(planned, _step(planned, A), status, text)
    assert (outcome.result, outcome.line) == (result, line)


def test_what_a_lookupd_answer_means():
    created = plan(CREATE, TOPIC, [], [L1])
    assert judge(created, _step(created, L1), 200, "").line == \
        "nsqlookupd 10.0.0.9:4161: registered topic events"
    deleted = plan(DELETE, TOPIC, [], [L1], {L1: LookupAnswer()})
    assert judge(deleted, _step(deleted, L1), 200, "").line == \
        "nsqlookupd 10.0.0.9:4161: removed topic events"


def _outcomes(planned, results):
    return [Outcome(step, result, "x") for step, result in zip(planned.nsqd_steps, results)]


def test_a_failed_nsqd_keeps_the_lookupd_registrations_of_a_delete():
    planned = plan(DELETE, TOPIC, [A, B], [L1, L2], {L1: LookupAnswer(), L2: LookupAnswer(known=False)})
    fine = _outcomes(planned, [DONE, ABSENT])
    assert lookupds_to_ask(planned, fine)
    broken = _outcomes(planned, [DONE, FAILED])
    assert not lookupds_to_ask(planned, broken)
    (held,) = kept(planned, broken)  # L2 had nothing to remove
    assert held.result == KEPT and held.step.address == L1
    assert held.line == ("nsqlookupd 10.0.0.9:4161: kept topic events registered, as nsqd "
                         "10.0.0.2:4151 may still have it: rerun once it answers")
    paused = plan(PAUSE, TOPIC, [A], [])
    assert lookupds_to_ask(paused, _outcomes(paused, [FAILED]))  # nothing to hold back


def test_verdicts():
    planned = plan(PAUSE, TOPIC, [A, B], [])
    assert not verdict(planned, _outcomes(planned, [DONE, ABSENT])).failed
    assert verdict(planned, _outcomes(planned, [DONE, FAILED])).failed
    nowhere = verdict(planned, _outcomes(planned, [ABSENT, ABSENT]))
    assert nowhere.failed and nowhere.errors == ["topic events: no nsqd has it (asked 2 nsqds)"]
    deleted = plan(DELETE, TOPIC, [], [L1], {L1: LookupAnswer(known=False)})
    assert verdict(deleted, []).errors == ["topic events: no nsqd or nsqlookupd has it"]
    created = plan(CREATE, TOPIC, [], [L1])
    registered = verdict(created, [Outcome(created.lookupd_steps[0], DONE, "x")])
    assert not registered.failed
    assert registered.notes == ["topic events: registered in nsqlookupd only; nsqds create it on "
                                "the first publish or subscription (--all-nodes creates it on "
                                "every nsqd nsqlookupd knows)"]
    on_nsqd = plan(CREATE, TOPIC, [A], [L1])
    assert verdict(on_nsqd, [Outcome(s, DONE, "x") for s in on_nsqd.acting_steps]).notes == []


def test_the_confirmation_says_what_is_lost_where():
    planned = plan(DELETE, TOPIC, [A], [L1], {L1: LookupAnswer((B,))})
    assert confirmation([planned]) == (
        "delete topic events on nsqd 10.0.0.1:4151, 10.0.0.2:4151 and from nsqlookupd "
        "10.0.0.9:4161\nThe messages queued there are lost once deleted. Proceed? [y/N] ")
    emptied = plan(EMPTY, CHANNEL, [A], [])
    assert confirmation([emptied]).startswith("empty channel audit of topic events on nsqd "
                                              "10.0.0.1:4151\nThe messages queued there are "
                                              "lost once emptied.")


def test_dry_run_lines_name_each_call():
    planned = plan(CREATE, CHANNEL, [A], [L1], {L1: LookupAnswer(known=False)})
    assert dry_run_lines(planned) == [
        "nsqd 10.0.0.1:4151: would create channel audit of topic events (POST "
        "/topic/create?topic=events, POST /channel/create?topic=events&channel=audit)",
        "nsqlookupd 10.0.0.9:4161: would create channel audit of topic events (POST "
        "/channel/create?topic=events&channel=audit)"]
    deleted = plan(DELETE, TOPIC, [], [L1], {L1: LookupAnswer(known=False)})
    assert dry_run_lines(deleted) == ["nsqlookupd 10.0.0.9:4161: has no topic events"]


def test_calls_print_as_requests():
    assert str(Call("/topic/pause", (("topic", "a"),))) == "POST /topic/pause?topic=a"
