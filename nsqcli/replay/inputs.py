"""nsq-replay inputs: expanding arguments into files, their order, topics, time filters.

Pure helpers (file-system reads only): no network, no clock.
"""

from __future__ import annotations

import glob
import os
import re
from datetime import datetime, timezone

from nsqcli.archive.names import NamePattern
from nsqcli.lib.protocol.names import valid_topic_name
from nsqcli.cli.values import check_name


class InputError(ValueError):
    """A usage problem with the inputs (the tool exits 2 with this message)."""


def expand_inputs(args: list[str], pattern: NamePattern | None = None) -> list[str]:
    """Files named by ``args``: files, directories (recursively) and glob patterns the shell did
    not expand (both sorted with :func:`sort_files`); ``-`` (stdin) is kept. Nothing given means
    stdin."""
    if not args:
        return ["-"]
    out: list[str] = []
    for arg in args:
        if arg == "-":
            out.append(arg)
        elif os.path.isdir(arg):
            found = [os.path.join(root, name) for root, dirs, names in os.walk(arg)
                     for name in names if not name.startswith(".")]
            if not found:
                raise InputError(f"directory {arg} holds no files")
            out.extend(sort_files(found, pattern))
        elif os.path.exists(arg):
            out.append(arg)
        elif glob.has_magic(arg):
            matches = [p for p in glob.glob(arg, recursive=True) if os.path.isfile(p)]
            if not matches:
                raise InputError(f"no file matches {arg!r}")
            out.extend(sort_files(matches, pattern))
        else:
            raise InputError(f"no such file: {arg}")
    if out.count("-") > 1:
        raise InputError("stdin (-) can be read only once")
    return out


_REV = re.compile(r"-(\d{6})(?=\.|$)")


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def sort_files(paths: list[str], pattern: NamePattern | None = None) -> list[str]:
    """File-name order; nsq-to-file names go by topic, then ``<DATETIME>``, then ``<REV>`` (their
    name puts the revision before the date, which plain sorting would get wrong)."""
    pattern = pattern or NamePattern()

    def key(path: str) -> tuple:
        tail = pattern.tail(path)
        prefix = path[: len(path) - len(tail)]
        match = pattern.regex.match(tail)
        if match is None or "topic" not in match.groupdict():
            return (prefix, 1, _natural(tail))
        topic = match.group("topic")
        rest = tail[:match.start("topic")] + tail[match.end("topic"):]
        rev_match = _REV.search(rest)
        rev = int(rev_match.group(1)) if rev_match else -1
        without_rev = _REV.sub("", rest, count=1) if rev_match else rest
        return (prefix, 0, topic, _natural(without_rev), rev)

    return sorted(paths, key=key)


def parse_renames(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``--rename old=new`` (repeatable) -> {old: new}; topic names are validated."""
    renames: dict[str, str] = {}
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not old or not new:
            raise InputError(f"invalid --rename {value!r}: expected OLD=NEW")
        for name in (old, new):
            try:
                check_name("--rename", name)
            except ValueError as exc:
                raise InputError(f"{exc} (in {value!r})") from None
        renames[old] = new
    return renames


def parse_time(text: str, what: str) -> int:
    """``--since``/``--until``: ISO 8601 (naive = local time) or Unix seconds -> nanoseconds."""
    raw = text.strip()
    try:
        return int(round(float(raw) * 1e9)) if "." in raw else int(raw) * 1_000_000_000
    except ValueError:
        pass
    iso = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise InputError(f"invalid {what} {text!r}: use ISO 8601 (2024-05-01T10:00:00, "
                         "optionally with +02:00 or Z) or Unix seconds") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, like date(1)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


class TopicResolver:
    """The target topic of a record: ``--topic``, else the record's own (jsonl), else the one in
    the nsq-to-file file name; ``--rename`` maps the latter two."""

    def __init__(self, topic: str | None, renames: dict[str, str],
                 pattern: NamePattern | None = None) -> None:
        if topic is not None:
            try:
                check_name("--topic", topic)
            except ValueError as exc:
                raise InputError(str(exc)) from None
        self.topic = topic
        self.renames = renames
        self.pattern = pattern or NamePattern()
        self._cache: dict[str | None, str] = {}

    def for_file(self, path: str) -> str | None:
        """The topic for a file's records that carry none (None when it cannot be told)."""
        if self.topic is not None:
            return self.topic
        if path == "-":
            return None
        topic = self.pattern.topic(path)
        return None if topic is None else self.rename(topic)

    def rename(self, topic: str) -> str:
        return self.renames.get(topic, topic)

    def check(self, topic: str) -> str:
        """Validate a topic found in a record (cached): InputError names it."""
        cached = self._cache.get(topic)
        if cached is None:
            renamed = self.rename(topic)
            if not valid_topic_name(renamed):
                raise InputError(f"invalid topic name {renamed!r} in the input")
            cached = self._cache[topic] = renamed
        return cached
