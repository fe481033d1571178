"""nsq-stat's numbers: nsqd ``/stats`` answers in, rows out. Pure: no network, no clock.

* :func:`parse_stats` reads one nsqd's ``/stats?format=json`` body (nsqd/stats.go's shape) into
  :class:`Counts` per ``(topic, channel)`` key; ``channel`` None is the topic itself.
* :class:`Tracker` turns each poll's :class:`Answer` list into :class:`Row` s: rates and the
  depth change come from the difference with the same nsqd's previous answer (so an nsqd that
  is down for a poll, or new, does not make the sums jump), then rows are summed over nsqds
  (unless ``per_nsqd``) and sorted by depth.

Rates are per second between two answers of an nsqd: ``rate_in`` is the growth of
``message_count``; ``rate_out`` is what left the queue for good: messages in, minus the growth
of depth + in flight + deferred (a channel: messages finished; a topic: messages handed to its
channels). A counter that went back (nsqd restarted, topic recreated) gives no rate that poll.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields, replace
from typing import Any, Iterable

Key = tuple[str, "str | None"]  # (topic, channel); channel None: the topic itself

#: the keys of the channel counters, in /stats and in Counts
_CHANNEL_COUNTERS = (("in_flight_count", "in_flight"), ("deferred_count", "deferred"),
                     ("requeue_count", "requeued"), ("timeout_count", "timed_out"),
                     ("client_count", "clients"))


@dataclass(frozen=True)
class Counts:
    """One topic's or channel's numbers (a topic has no in-flight, deferred, ... : None)."""

    depth: int  # memory + backend (nsqd's "depth")
    backend_depth: int
    messages: int  # message_count: messages ever put into it
    paused: bool = False
    in_flight: int | None = None
    deferred: int | None = None
    requeued: int | None = None
    timed_out: int | None = None
    clients: int | None = None

    @property
    def memory_depth(self) -> int:
        return max(0, self.depth - self.backend_depth)

    @property
    def unfinished(self) -> int:
        """Messages in it that did not leave yet: queued, in flight or deferred."""
        return self.depth + (self.in_flight or 0) + (self.deferred or 0)


@dataclass(frozen=True)
class Answer:
    """One nsqd's answer to one poll: its counts, or why it gave none."""

    nsqd: str  # HTTP address
    at: float  # when it answered (seconds, any monotonic clock)
    counts: dict[Key, Counts] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Row:
    topic: str
    channel: str | None  # None: the topic itself
    nsqd: str | None  # None: summed over nsqds
    counts: Counts
    nsqds: int = 1  # how many nsqds hold it
    paused_on: int = 0  # on how many of them it is paused
    rate_in: float | None = None
    rate_out: float | None = None
    depth_change: int | None = None

    @property
    def trend(self) -> str | None:
        """``rising``, ``falling`` or ``steady`` depth since the previous poll (None: unknown)."""
        if self.depth_change is None:
            return None
        return "rising" if self.depth_change > 0 else "falling" if self.depth_change < 0 else "steady"


@dataclass(frozen=True)
class Report:
    """What one poll shows: rows, and the state of every nsqd (and nsqlookupd) asked."""

    poll: int  # 1, 2, ...
    time: float  # wall clock (seconds since the epoch)
    rows: list[Row]
    nsqds: list[tuple[str, str | None]]  # (address, error or None)
    lookupds: list[tuple[str, str | None]]

    @property
    def down(self) -> list[tuple[str, str]]:
        return [(address, error) for address, error in self.nsqds if error is not None]

    @property
    def failed(self) -> bool:
        """Nothing answered although something was asked (every nsqd or every lookupd failed)."""
        if any(error is None for _, error in self.nsqds):
            return False
        return bool(self.nsqds) or any(error is not None for _, error in self.lookupds)


# ---- /stats -------------------------------------------------------------------------------------


def _count(entry: dict, name: str) -> int:
    value = entry.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"/stats answer has no valid {name} in {str(entry)[:100]}")
    return value


def _name(entry: Any, name: str) -> str:
    value = entry.get(name) if isinstance(entry, dict) else None
    if not isinstance(value, str) or not value:
        raise ValueError(f"/stats answer has an entry without {name}: {str(entry)[:100]}")
    return value


def parse_stats(body: bytes, topic: str | None = None,
                channel: str | None = None) -> dict[Key, Counts]:
    """The counts in one nsqd's /stats JSON body, narrowed to ``topic`` / ``channel`` (a
    ``channel`` leaves out the topics' own rows). ValueError when it is not nsqd's shape."""
    from nsqcli.cli.nsq_http import Reply, v1_data
    from nsqcli.lib.lookupd import LookupdError

    try:
        data = v1_data(Reply(200, body))  # JSON, unwrapped if nsqd is older than 1.0
    except LookupdError as exc:
        raise ValueError(f"/stats answer: {exc}") from None
    if not isinstance(data, dict) or "topics" not in data:
        raise ValueError(f"/stats answer has no topics: {str(data)[:100]}")
    topics = data["topics"] or []  # nsqd answers null for a topic it does not have
    if not isinstance(topics, list):
        raise ValueError(f"/stats topics is not a list: {str(topics)[:100]}")
    counts: dict[Key, Counts] = {}
    for entry in topics:
        topic_name = _name(entry, "topic_name")
        if topic is not None and topic_name != topic:
            continue
        if channel is None:
            counts[(topic_name, None)] = Counts(
                _count(entry, "depth"), _count(entry, "backend_depth"),
                _count(entry, "message_count"), entry.get("paused") is True)
        for chan in entry.get("channels") or []:
            channel_name = _name(chan, "channel_name")
            if channel is not None and channel_name != channel:
                continue
            counts[(topic_name, channel_name)] = Counts(
                _count(chan, "depth"), _count(chan, "backend_depth"), _count(chan, "message_count"),
                chan.get("paused") is True,
                **{ours: _count(chan, theirs) for theirs, ours in _CHANNEL_COUNTERS})
    return counts


# ---- rows ---------------------------------------------------------------------------------------


def _changes(before: tuple[Counts, float] | None,
             now: tuple[Counts, float]) -> tuple[float | None, float | None, int | None]:
    """(rate in, rate out, depth change) from an nsqd's previous answer to this one."""
    if before is None:
        return None, None, None
    (old, old_at), (new, at) = before, now
    change = new.depth - old.depth
    elapsed = at - old_at
    messages = new.messages - old.messages
    if elapsed <= 0 or messages < 0:  # the counter went back: no rate this time
        return None, None, change
    left = messages - (new.unfinished - old.unfinished)
    return messages / elapsed, max(0, left) / elapsed, change


def _sum(values: Iterable[int | float | None]) -> Any:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _combine(rows: list[Row]) -> Row:
    """Rows of one key on several nsqds, summed into one."""
    first = rows[0]
    totals = {f.name: _sum(getattr(row.counts, f.name) for row in rows)
              for f in fields(Counts) if f.name != "paused"}
    paused_on = sum(row.paused_on for row in rows)
    counts = Counts(**totals, paused=paused_on > 0)
    return Row(first.topic, first.channel, None, counts, len(rows), paused_on,
               _sum(r.rate_in for r in rows), _sum(r.rate_out for r in rows),
               _sum(r.depth_change for r in rows))


def sort_rows(rows: list[Row]) -> list[Row]:
    """Topics by their whole depth (topic and channels), deepest first; in each, the topic's
    own row first, then its channels, deepest first; names break ties."""
    weight: dict[str, int] = defaultdict(int)
    for row in rows:
        weight[row.topic] += row.counts.depth
    return sorted(rows, key=lambda r: (-weight[r.topic], r.topic, r.channel is not None,
                                       -r.counts.depth, r.channel or "", r.nsqd or ""))


class Tracker:
    """Remembers each nsqd's previous answer, so that each poll's rows carry rates and trends."""

    def __init__(self, per_nsqd: bool = False) -> None:
        self.per_nsqd = per_nsqd
        self._previous: dict[tuple[str, Key], tuple[Counts, float]] = {}

    def rows(self, answers: list[Answer]) -> list[Row]:
        rows: list[Row] = []
        current: dict[tuple[str, Key], tuple[Counts, float]] = {}
        for answer in answers:
            for key, counts in (answer.counts or {}).items():
                now = current[(answer.nsqd, key)] = (counts, answer.at)
                rate_in, rate_out, change = _changes(self._previous.get((answer.nsqd, key)), now)
                rows.append(Row(key[0], key[1], answer.nsqd, counts, 1, int(counts.paused),
                                rate_in, rate_out, change))
        answered = {answer.nsqd for answer in answers if answer.counts is not None}
        # an nsqd that did not answer keeps its last answer: its next one gives rates again
        kept = {key: value for key, value in self._previous.items() if key[0] not in answered}
        self._previous = {**kept, **current}
        if not self.per_nsqd:
            by_key: dict[Key, list[Row]] = defaultdict(list)
            for row in rows:
                by_key[(row.topic, row.channel)].append(row)
            rows = [_combine(group) if len(group) > 1 else replace(group[0], nsqd=None)
                    for group in by_key.values()]
        return sort_rows(rows)

    def report(self, poll: int, time: float, answers: list[Answer],
               lookupds: Iterable[tuple[str, str | None]] = ()) -> Report:
        return Report(poll, time, self.rows(answers),
                      [(answer.nsqd, answer.error) for answer in answers], list(lookupds))
