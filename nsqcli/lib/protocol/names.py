"""Topic and channel name rules (nsqd internal/protocol/names.go)."""

from __future__ import annotations

import re

_NAME_RE = re.compile(r"^[.a-zA-Z0-9_-]+(#ephemeral)?$")
MAX_NAME_LENGTH = 64
EPHEMERAL_SUFFIX = "#ephemeral"


def _valid(name: object) -> bool:
    if isinstance(name, bytes):
        try:
            name = name.decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(name, str):
        return False
    return 1 <= len(name) <= MAX_NAME_LENGTH and _NAME_RE.match(name) is not None


def valid_topic_name(topic: object) -> bool:
    """True when ``topic`` is a name nsqd accepts: 1-64 of ``[.a-zA-Z0-9_-]``, optional ``#ephemeral``."""
    return _valid(topic)


def valid_channel_name(channel: object) -> bool:
    """True when ``channel`` is a name nsqd accepts (same rule as topics)."""
    return _valid(channel)


def is_ephemeral(name: str | bytes) -> bool:
    if isinstance(name, bytes):
        return name.endswith(EPHEMERAL_SUFFIX.encode())
    return name.endswith(EPHEMERAL_SUFFIX)


def check_topic(topic: object) -> str:
    """Return ``topic`` as str or raise a ValueError that says what is wrong with it."""
    return _check(topic, "topic")


def check_channel(channel: object) -> str:
    return _check(channel, "channel")


def _check(name: object, kind: str) -> str:
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be str, not {type(name).__name__}")
    if not _valid(name):
        raise ValueError(
            f"invalid {kind} name {name!r}: use 1-{MAX_NAME_LENGTH} characters of "
            f"[.a-zA-Z0-9_-], optionally ending in '#ephemeral'"
        )
    return name
