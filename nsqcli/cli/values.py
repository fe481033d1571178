"""Parsing of flag values shared by the tools: durations, addresses, byte strings, key=value.

Pure functions raising ValueError with a message fit for a one-line usage error; the click
parameter types in :mod:`nsqcli.cli.options` wrap them.
"""

from __future__ import annotations

import re

from nsqcli import __version__

DEFAULT_NSQD_TCP_ADDRESS = "127.0.0.1:4150"  # the tools' nsqd when no address or lookupd is given
DEFAULT_NSQD_HTTP_ADDRESS = "127.0.0.1:4151"  # the same nsqd, for the tools of its HTTP API


def user_agent(prog: str) -> str:
    """The IDENTIFY user_agent of a tool."""
    return f"{prog}/{__version__} nsqcli/{__version__}"


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | int | float, bare_unit: str = "s") -> float:
    """Go-style duration (``250ms``, ``1.5s``, ``1m30s``, ``2h``) in seconds.

    A bare number is in ``bare_unit`` (``"s"`` for the tools' own flags, ``"ms"`` for go-nsq
    config options, as go-nsq's ``Config.Set`` reads integers as milliseconds).
    """
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r}")
    if isinstance(text, (int, float)):
        value = float(text) * _UNIT_SECONDS[bare_unit]
    else:
        raw = text.strip()
        sign = -1.0 if raw.startswith("-") else 1.0
        body = raw.lstrip("+-")
        try:
            value = float(body) * _UNIT_SECONDS[bare_unit]
        except ValueError:
            pos, total = 0, 0.0
            for match in _DURATION_PART.finditer(body):
                if match.start() != pos:
                    break
                total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
                pos = match.end()
            if pos != len(body) or not body:
                raise ValueError(
                    f"invalid duration {text!r} (use e.g. 250ms, 1.5s, 1m30s, 2h)"
                ) from None
            value = total
        value *= sign
    return value


def format_duration(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds * 1000:g}ms"


def parse_tcp_address(text: str, what: str = "address") -> str:
    """``host:port`` (``[v6]:port`` for IPv6), returned normalised; ValueError otherwise."""
    host, port = split_host_port(text, what)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(text: str, what: str = "address") -> tuple[str, int]:
    raw = text.strip()
    if "://" in raw:
        raise ValueError(f"invalid {what} {text!r}: expected host:port without a scheme")
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"invalid {what} {text!r}: expected [ipv6]:port")
        port_text = rest[1:]
    else:
        host, sep, port_text = raw.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"invalid {what} {text!r}: expected host:port")
    if not host:
        raise ValueError(f"invalid {what} {text!r}: missing host")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid {what} {text!r}: port must be 1-65535")
    return host, int(port_text)


def parse_http_address(text: str, what: str = "lookupd HTTP address") -> str:
    """``host:port`` or an ``http(s)://`` URL (kept as given, as pynsq accepts both)."""
    raw = text.strip()
    if raw.startswith(("http://", "https://")):
        rest = raw.split("://", 1)[1]
        if not rest or rest.startswith("/"):
            raise ValueError(f"invalid {what} {text!r}: missing host")
        return raw
    return parse_tcp_address(raw, what)


_SIMPLE_ESCAPES = {"\\n": b"\n", "\\0": b"\0", "\\t": b"\t", "\\r\\n": b"\r\n", "\\r": b"\r"}


def check_name(flag: str, name: str, kind: str = "topic") -> str:
    """An NSQ topic (or channel) name given with ``flag``; ValueError with the naming rule,
    worded as click words a bad value ("Invalid value for '--topic': ...")."""
    from nsqcli.lib.protocol.names import check_channel, check_topic

    try:
        return (check_topic if kind == "topic" else check_channel)(name)
    except ValueError as exc:
        raise ValueError(f"Invalid value for '{flag}': {exc}") from None


def parse_delimiter(text: str) -> bytes:
    """A delimiter given on the command line, with C escapes (``\\n``, ``\\t``, ``\\0``, ``\\x1e``)."""
    if text == "":
        raise ValueError("the delimiter must not be empty")
    if "\\" not in text:
        return text.encode("utf-8")
    if text in _SIMPLE_ESCAPES:  # the common cases, without loading the unicode_escape codec
        return _SIMPLE_ESCAPES[text]
    try:
        value = text.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError):
        value = text.encode("utf-8")
    if not value:
        raise ValueError("the delimiter must not be empty")
    return value


def parse_key_value(text: str) -> tuple[str, str]:
    """``key=value`` or go-nsq's ``key,value``; a bare ``key`` means ``true`` as in go-nsq."""
    for sep in ("=", ","):
        if sep in text:
            key, _, value = text.partition(sep)
            return key.strip(), value.strip()
    return text.strip(), "true"


def parse_bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "t", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "f", "no", "n", "off"):
        return False
    raise ValueError(f"invalid boolean {text!r} (use true or false)")
