"""Which HTTP calls an admin action makes where, and what each answer means: pure, no I/O.

The calls follow nsqadmin (v1.3.0) through nsqd's and nsqlookupd's HTTP API:

* the nsqds acted on are the ones given (``--nsqd-http-address``) and, with
  ``--lookupd-http-address``, the producers every nsqlookupd lists for the topic (``/lookup``);
  ``create --all-nodes`` adds every nsqd nsqlookupd knows (``/nodes``);
* ``create`` also registers the topic (or channel) in every nsqlookupd, as nsqadmin does, so
  that it is listed before any nsqd has it; on an nsqd, a channel is created with its topic
  (``/topic/create`` then ``/channel/create``, as a subscription would);
* ``delete`` deletes on the nsqds first, then from the nsqlookupds that know the topic (or
  channel), so that it does not come back from their registrations (an nsqd re-creates the
  channels nsqlookupd lists when a topic is created); when an nsqd failed, the registrations are
  kept, so that the topic that nsqd still has stays discoverable;
* ``empty``, ``pause``, ``unpause`` act on the nsqds only.

An nsqd answering 404 ``TOPIC_NOT_FOUND``/``CHANNEL_NOT_FOUND`` does not have it: that is
reported, not a failure (nsqadmin only asks the nsqds that have the topic); a subject that no
nsqd (nor, for ``delete``, nsqlookupd) had is a failure of the whole command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

CREATE, DELETE, EMPTY, PAUSE, UNPAUSE = "create", "delete", "empty", "pause", "unpause"
ACTIONS = (CREATE, DELETE, EMPTY, PAUSE, UNPAUSE)
#: what destroys messages, and so is confirmed first
DESTRUCTIVE = frozenset({DELETE, EMPTY})
PAST = {CREATE: "created", DELETE: "deleted", EMPTY: "emptied", PAUSE: "paused",
        UNPAUSE: "unpaused"}
NSQD, LOOKUPD = "nsqd", "nsqlookupd"

# what became of one daemon's step
DONE, ABSENT, FAILED, KEPT = "done", "absent", "failed", "kept"
_NOT_FOUND = ("TOPIC_NOT_FOUND", "CHANNEL_NOT_FOUND")


@dataclass(frozen=True)
class Subject:
    """A topic, or a channel of a topic."""

    topic: str
    channel: str | None = None

    @property
    def kind(self) -> str:
        return "channel" if self.channel is not None else "topic"

    def query(self) -> tuple[tuple[str, str], ...]:
        if self.channel is None:
            return (("topic", self.topic),)
        return (("topic", self.topic), ("channel", self.channel))

    def __str__(self) -> str:
        if self.channel is None:
            return f"topic {self.topic}"
        return f"channel {self.channel} of topic {self.topic}"


@dataclass(frozen=True)
class Call:
    path: str
    query: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return "POST " + self.path + "?" + "&".join(f"{key}={value}" for key, value in self.query)


@dataclass(frozen=True)
class Step:
    """What one daemon is asked, in order (the first answer that is not 200 ends it). A step
    without calls is a daemon that does not have the subject (reported, nothing sent)."""

    daemon: str
    address: str
    calls: tuple[Call, ...]

    def line(self, text: str) -> str:
        return f"{self.daemon} {self.address}: {text}"


@dataclass(frozen=True)
class LookupAnswer:
    """One nsqlookupd's ``/lookup?topic=``: the HTTP addresses of the topic's producers and the
    channels it has registered; ``known=False`` for its 404 TOPIC_NOT_FOUND."""

    producers: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    known: bool = True


@dataclass(frozen=True)
class Outcome:
    step: Step
    result: str  # DONE, ABSENT, FAILED or KEPT
    text: str

    @property
    def line(self) -> str:
        return self.step.line(self.text)


@dataclass(frozen=True)
class Plan:
    action: str
    subject: Subject
    nsqd_steps: tuple[Step, ...]
    lookupd_steps: tuple[Step, ...]

    @property
    def lookupds_last(self) -> bool:
        """delete: the nsqlookupds only after the nsqds, and only if none of them failed."""
        return self.action == DELETE

    @property
    def acting_steps(self) -> list[Step]:
        return [step for step in self.nsqd_steps + self.lookupd_steps if step.calls]


def discovery(action: str, subject: Subject, all_nodes: bool) -> tuple[bool, bool, bool]:
    """What to ask before planning: nsqlookupd's ``/lookup`` for the topic, its ``/nodes``, and
    whether each given nsqd has the subject (its ``/stats``; nsqadmin asks the same)."""
    lookup = not (action == CREATE and subject.channel is None)
    return lookup, action == CREATE and all_nodes, action != CREATE


def _unique(addresses: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(addresses))


def plan(action: str, subject: Subject, nsqds: Sequence[str], lookupds: Sequence[str],
         lookups: dict[str, LookupAnswer] | None = None, nodes: Sequence[str] = (),
         nsqd_has: dict[str, bool] | None = None) -> Plan:
    """The steps of ``action`` on ``subject``.

    ``nsqds``/``lookupds``: the addresses given; ``lookups``: the ``/lookup`` answers of the
    nsqlookupds that answered (a failed one is left out); ``nodes``: the HTTP addresses of
    ``/nodes`` (only for ``create --all-nodes``); ``nsqd_has``: whether a given nsqd has the
    subject, for those whose ``/stats`` answered (one without it is not asked to act).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    lookups = lookups or {}
    producers = [p for answer in lookups.values() for p in answer.producers]
    targets = _unique([*nsqds, *producers, *nodes])
    lacking = {address for address, has in (nsqd_has or {}).items() if not has}
    lacking -= set(producers)  # what nsqlookupd lists is asked anyway (a race is 404 then)
    nsqd_steps = tuple(Step(NSQD, address, () if address in lacking
                            else _nsqd_calls(action, subject)) for address in targets)
    lookupd_steps: tuple[Step, ...] = ()
    if action == CREATE:
        asked = _unique(lookupds) if subject.channel is None else list(lookups)
        call = Call(f"/{subject.kind}/create", subject.query())
        lookupd_steps = tuple(Step(LOOKUPD, address, (call,)) for address in asked)
    elif action == DELETE:
        call = Call(f"/{subject.kind}/delete", subject.query())
        lookupd_steps = tuple(
            Step(LOOKUPD, address, (call,) if _registers(answer, subject) else ())
            for address, answer in lookups.items())
    return Plan(action, subject, nsqd_steps, lookupd_steps)


def _registers(answer: LookupAnswer, subject: Subject) -> bool:
    if subject.channel is None:
        return answer.known
    return subject.channel in answer.channels


def _nsqd_calls(action: str, subject: Subject) -> tuple[Call, ...]:
    call = Call(f"/{subject.kind}/{action}", subject.query())
    if action == CREATE and subject.channel is not None:
        return Call("/topic/create", (("topic", subject.topic),)), call
    return (call,)


# ---- answers -----------------------------------------------------------------------------------


def judge(planned: Plan, step: Step, status: int | None, text: str) -> Outcome:
    """The outcome of ``step`` from the answer that ended it: an HTTP ``status`` with nsqd's
    error ``text`` (``TOPIC_NOT_FOUND``), or ``status=None`` and why no answer came."""
    if status is None:
        return Outcome(step, FAILED, f"{planned.action} {planned.subject} failed: {text}")
    if status == 200:
        if step.daemon == LOOKUPD:
            done = "registered" if planned.action == CREATE else "removed"
            return Outcome(step, DONE, f"{done} {planned.subject}")
        return Outcome(step, DONE, f"{PAST[planned.action]} {planned.subject}")
    if status == 404 and text in _NOT_FOUND:
        missing = Subject(planned.subject.topic) if text == "TOPIC_NOT_FOUND" else planned.subject
        return Outcome(step, ABSENT, f"has no {missing}")
    detail = f"HTTP {status}" + (f" {text}" if text else "")
    return Outcome(step, FAILED, f"{planned.action} {planned.subject} failed: {detail}")


def absent(planned: Plan, step: Step) -> Outcome:
    """A step without calls: that nsqd or nsqlookupd does not have the subject."""
    return Outcome(step, ABSENT, f"has no {planned.subject}")


def kept(planned: Plan, nsqd_outcomes: Sequence[Outcome]) -> list[Outcome]:
    """delete after an nsqd failed: the registrations stay (see the module docstring)."""
    failed = ", ".join(o.step.address for o in nsqd_outcomes if o.result == FAILED)
    text = (f"kept {planned.subject} registered, as nsqd {failed} may still have it: rerun once "
            "it answers")
    return [Outcome(step, KEPT, text) for step in planned.lookupd_steps if step.calls]


def lookupds_to_ask(planned: Plan, nsqd_outcomes: Sequence[Outcome]) -> bool:
    return not planned.lookupds_last or all(o.result != FAILED for o in nsqd_outcomes)


def dry_run_lines(planned: Plan) -> list[str]:
    lines = []
    for step in planned.nsqd_steps + planned.lookupd_steps:
        if not step.calls:
            lines.append(step.line(f"has no {planned.subject}"))
            continue
        calls = ", ".join(str(call) for call in step.calls)
        lines.append(step.line(f"would {planned.action} {planned.subject} ({calls})"))
    return lines


@dataclass
class Verdict:
    failed: bool = False
    errors: list[str] = field(default_factory=list)  # lines for stderr beyond the steps' own
    notes: list[str] = field(default_factory=list)  # what the user should know (unless -q)


def verdict(planned: Plan, outcomes: Sequence[Outcome]) -> Verdict:
    """Failed when a daemon failed, or when nothing had the subject to act on."""
    result = Verdict(failed=any(o.result in (FAILED, KEPT) for o in outcomes))
    nothing_done = not any(o.result == DONE for o in outcomes)
    if planned.action != CREATE and nothing_done and not result.failed:
        where = "no nsqd" + (" or nsqlookupd" if planned.action == DELETE else "")
        asked = len(planned.nsqd_steps)
        counted = f" (asked {asked} nsqd{'' if asked == 1 else 's'})" if asked else ""
        result.failed = True
        result.errors.append(f"{planned.subject}: {where} has it{counted}")
    if planned.action == CREATE and not planned.nsqd_steps and not result.failed:
        result.notes.append(f"{planned.subject}: registered in nsqlookupd only; nsqds create it "
                            "on the first publish or subscription (--all-nodes creates it on "
                            "every nsqd nsqlookupd knows)")
    return result


def confirmation(plans: Sequence[Plan]) -> str:
    """The question asked before ``delete``/``empty``: what, where, and that messages are lost."""
    lines = []
    for item in plans:
        nsqds = [s.address for s in item.nsqd_steps if s.calls]
        lookupds = [s.address for s in item.lookupd_steps if s.calls]
        where = []
        if nsqds:
            where.append("on nsqd " + ", ".join(nsqds))
        if lookupds:
            where.append("from nsqlookupd " + ", ".join(lookupds))
        lines.append(f"{item.action} {item.subject} " + " and ".join(where))
    lost = "deleted" if plans[0].action == DELETE else "emptied"
    return "\n".join(lines) + f"\nThe messages queued there are lost once {lost}. Proceed? [y/N] "
