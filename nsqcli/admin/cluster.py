"""What the cluster says, over HTTP: nsqlookupd's ``/lookup``, ``/nodes``, ``/topics`` and
``/channels``, and nsqd's ``/stats``; and the steps of a plan carried out.

Every daemon is asked at once; one that fails is named in an error line and the others' answers
are used (a partial answer is still a failure of the command: the caller exits 1).
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Sequence, TypeVar

from nsqcli.admin.plan import (
    LOOKUPD, NSQD, LookupAnswer, Outcome, Plan, Step, Subject, absent, discovery, judge, kept,
    lookupds_to_ask, plan,
)
from nsqcli.cli.lookupd_nodes import parse_nodes
from nsqcli.cli.nsq_http import HttpSession, Reply, RequestFailed, parse_names, stats_topics
from nsqcli.lib.lookupd import LookupdError

T = TypeVar("T")


async def _ask_each(addresses: Sequence[str], daemon: str, path: str,
                    ask: Callable[[str], Awaitable[T]]) -> tuple[dict[str, T], list[str]]:
    """``ask(address)`` for every address at once -> (answers by address, error lines)."""
    results = await asyncio.gather(*(ask(address) for address in addresses),
                                   return_exceptions=True)
    answers: dict[str, T] = {}
    errors: list[str] = []
    for address, result in zip(addresses, results):
        if isinstance(result, (RequestFailed, LookupdError)):
            errors.append(f"{daemon} {address}: {path} failed: {result}")
        elif isinstance(result, BaseException):
            raise result
        else:
            answers[address] = result
    return answers, errors


async def lookups(session: HttpSession, lookupds: Sequence[str],
                  topic: str) -> tuple[dict[str, LookupAnswer], list[str]]:
    """Every nsqlookupd's ``/lookup?topic=``."""
    async def ask(address: str) -> LookupAnswer:
        reply = await session.get(address, "/lookup", [("topic", topic)], daemon=LOOKUPD)
        if reply.status == 404 and reply.message() == "TOPIC_NOT_FOUND":
            return LookupAnswer(known=False)
        if not reply.ok:
            raise LookupdError(reply.describe())
        producers = tuple(node.http_address for node in parse_nodes(reply.body, reply.status)
                          if node.http_address)
        return LookupAnswer(producers, tuple(parse_names(reply.body, "channels")))

    return await _ask_each(lookupds, LOOKUPD, "/lookup", ask)


async def nodes(session: HttpSession, lookupds: Sequence[str]) -> tuple[list[str], list[str]]:
    """The HTTP addresses of every nsqd the nsqlookupds know (``/nodes``)."""
    async def ask(address: str) -> list[str]:
        reply = await session.get(address, "/nodes", daemon=LOOKUPD)
        return [node.http_address for node in parse_nodes(reply.body, reply.status)
                if node.http_address]

    answers, errors = await _ask_each(lookupds, LOOKUPD, "/nodes", ask)
    return list(dict.fromkeys(a for found in answers.values() for a in found)), errors


async def make_plan(session: HttpSession, action: str, subject: Subject, nsqds: Sequence[str],
                    lookupds: Sequence[str], all_nodes: bool = False) -> tuple[Plan, list[str]]:
    """The plan of ``action`` on ``subject``, after asking nsqlookupd what it needs to know;
    with the error lines of the nsqlookupds that failed."""
    ask_lookup, ask_nodes, ask_nsqds = discovery(action, subject, all_nodes)
    answers: dict[str, LookupAnswer] = {}
    found: list[str] = []
    errors: list[str] = []
    has: dict[str, bool] = {}
    if ask_lookup and lookupds:
        answers, errors = await lookups(session, lookupds, subject.topic)
    if ask_nodes and lookupds:
        found, node_errors = await nodes(session, lookupds)
        errors += node_errors
    if ask_nsqds and nsqds:
        has = await nsqd_has(session, nsqds, subject)
    return plan(action, subject, nsqds, lookupds, answers, found, has), errors


async def nsqd_has(session: HttpSession, nsqds: Sequence[str], subject: Subject) -> dict[str, bool]:
    """Whether each nsqd has ``subject`` (its ``/stats``); one that does not answer is left out,
    to be asked to act anyway (and be named when that fails)."""
    query = [("format", "json"), ("include_clients", "false"), ("include_mem", "false"),
             ("topic", subject.topic)]

    async def ask(address: str) -> bool:
        channels = stats_topics(await session.get(address, "/stats", query, daemon=NSQD))
        return subject.topic in channels and (subject.channel is None
                                              or subject.channel in channels[subject.topic])

    answers, _ = await _ask_each(nsqds, NSQD, "/stats", ask)
    return answers


# ---- carrying a plan out -----------------------------------------------------------------------


async def run_step(session: HttpSession, planned: Plan, step: Step) -> Outcome:
    if not step.calls:
        return absent(planned, step)
    reply = Reply(200, b"")
    for call in step.calls:
        try:
            reply = await session.post(step.address, call.path, call.query, daemon=step.daemon)
        except RequestFailed as exc:
            return judge(planned, step, None, str(exc))
        if not reply.ok:
            break
    return judge(planned, step, reply.status, "" if reply.ok else reply.message())


async def execute(session: HttpSession, planned: Plan) -> list[Outcome]:
    """Every step's outcome, nsqds first (in the plan's order)."""
    async def run(steps: Sequence[Step]) -> list[Outcome]:
        return list(await asyncio.gather(*(run_step(session, planned, s) for s in steps)))

    if not planned.lookupds_last:
        return await run(planned.nsqd_steps + planned.lookupd_steps)
    nsqd_outcomes = await run(planned.nsqd_steps)
    if lookupds_to_ask(planned, nsqd_outcomes):
        return nsqd_outcomes + await run(planned.lookupd_steps)
    unasked = [absent(planned, step) for step in planned.lookupd_steps if not step.calls]
    return nsqd_outcomes + kept(planned, nsqd_outcomes) + unasked


# ---- listing -----------------------------------------------------------------------------------


async def list_names(session: HttpSession, nsqds: Sequence[str], lookupds: Sequence[str],
                     topic: str | None = None) -> tuple[list[str], list[str]]:
    """Topics (or, with ``topic``, its channels) of every nsqlookupd (``/topics``,
    ``/channels``) and nsqd (``/stats``): (sorted union, error lines)."""
    query = [("format", "json"), ("include_clients", "false")]
    if topic is not None:
        query.append(("topic", topic))

    async def from_nsqd(address: str) -> list[str]:
        found = stats_topics(await session.get(address, "/stats", query, daemon=NSQD))
        return list(found) if topic is None else found.get(topic, [])

    key = "topics" if topic is None else "channels"
    lookupd_query = [] if topic is None else [("topic", topic)]

    async def from_lookupd(address: str) -> list[str]:
        reply = await session.get(address, f"/{key}", lookupd_query, daemon=LOOKUPD)
        return parse_names(reply.body, key, reply.status)

    (by_nsqd, nsqd_errors), (by_lookupd, lookupd_errors) = await asyncio.gather(
        _ask_each(nsqds, NSQD, "/stats", from_nsqd),
        _ask_each(lookupds, LOOKUPD, f"/{key}", from_lookupd))
    names = {name for found in (*by_nsqd.values(), *by_lookupd.values()) for name in found}
    return sorted(names), nsqd_errors + lookupd_errors
