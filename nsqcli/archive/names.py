"""File names as the Go ``nsq_to_file`` makes them, and parsing them back for nsq-replay.

``--filename-format`` tokens: ``<TOPIC> <HOST> <PID> <DATETIME> <REV>``. ``<DATETIME>`` is
``--datetime-format`` rendered with Go's strftime subset; ``<REV>`` renders as ``-000000`` and is
bumped to avoid overwriting. Pure functions: the clock, host name and pid are arguments.
"""

from __future__ import annotations

import re
import socket
from datetime import datetime

DEFAULT_FILENAME_FORMAT = "<TOPIC>.<HOST><REV>.<DATETIME>.log"
DEFAULT_DATETIME_FORMAT = "%Y-%m-%d_%H"
REV_TOKEN = "<REV>"
DATETIME_TOKEN = "<DATETIME>"

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _tz_offset(t: datetime) -> str:
    offset = t.utcoffset()
    if offset is None:
        return "+0000"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def _tz_name(t: datetime) -> str:
    name = t.tzname()
    # Go prints the numeric offset when a zone has no abbreviation.
    return name if name else _tz_offset(t)


# Each directive: (render from a datetime, regex matching what it renders).
_DIRECTIVES = {
    "Y": (lambda t: f"{t.year:04d}", r"\d{4}"),
    "y": (lambda t: f"{t.year % 100:02d}", r"\d{2}"),
    "m": (lambda t: f"{t.month:02d}", r"\d{2}"),
    "d": (lambda t: f"{t.day:02d}", r"\d{2}"),
    "H": (lambda t: f"{t.hour:02d}", r"\d{2}"),
    "I": (lambda t: f"{(t.hour % 12) or 12:02d}", r"\d{2}"),
    "M": (lambda t: f"{t.minute:02d}", r"\d{2}"),
    "S": (lambda t: f"{t.second:02d}", r"\d{2}"),
    "p": (lambda t: "PM" if t.hour >= 12 else "AM", r"[AP]M"),
    "B": (lambda t: _MONTHS[t.month - 1], "[A-Z][a-z]+"),
    "b": (lambda t: _MONTHS[t.month - 1][:3], "[A-Z][a-z]{2}"),
    "A": (lambda t: _DAYS[t.weekday()], "[A-Z][a-z]+"),
    "a": (lambda t: _DAYS[t.weekday()][:3], "[A-Z][a-z]{2}"),
    "Z": (_tz_name, r"[A-Za-z0-9+-]+"),
    "z": (_tz_offset, r"[+-]\d{4}"),
    "%": (lambda t: "%", "%"),
}


def _split_strftime(fmt: str) -> list[tuple[bool, str]]:
    """[(is_directive, text)] -- unknown directives stay literal, as in the Go tool."""
    parts: list[tuple[bool, str]] = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt) and fmt[i + 1] in _DIRECTIVES:
            parts.append((True, fmt[i + 1]))
            i += 2
        else:
            parts.append((False, fmt[i]))
            i += 1
    return parts


def strftime(fmt: str, t: datetime) -> str:
    """Go ``nsq_to_file``'s strftime: %Y %y %m %d %H %I %M %S %p %B %b %A %a %Z %z %%, English
    names whatever the locale; any other ``%x`` is kept as is."""
    return "".join(_DIRECTIVES[text][0](t) if directive else text
                   for directive, text in _split_strftime(fmt))


def strftime_regex(fmt: str) -> str:
    """A regex source matching what :func:`strftime` renders for ``fmt``."""
    return "".join(_DIRECTIVES[text][1] if directive else re.escape(text)
                   for directive, text in _split_strftime(fmt))


def host_names() -> tuple[str, str]:
    """(hostname, short hostname) as Go's os.Hostname() and its first dotted component."""
    hostname = socket.gethostname()
    return hostname, hostname.split(".")[0]


def needs_rev(gzip: bool, rotate_size: int, rotate_interval: float, separate_work_dir: bool) -> bool:
    return bool(gzip or rotate_size > 0 or rotate_interval > 0 or separate_work_dir)


def compute_filename_template(
    filename_format: str,
    topic: str,
    *,
    host_identifier: str = "",
    gzip: bool = False,
    rev_required: bool = False,
    hostname: str | None = None,
    pid: int = 0,
) -> str:
    """The per-topic template: every token replaced but ``<DATETIME>`` and ``<REV>``.

    ``<REV>`` must be present when ``rev_required`` (gzip, rotation or a separate work dir),
    otherwise it is dropped; ``.gz`` is appended for gzip output unless already there.
    """
    if hostname is None:
        hostname, short = host_names()
    else:
        short = hostname.split(".")[0]
    identifier = short
    if host_identifier:
        identifier = host_identifier.replace("<SHORT_HOST>", short).replace("<HOSTNAME>", hostname)
    template = filename_format
    if rev_required:
        if REV_TOKEN not in template:
            raise ValueError("missing <REV> in --filename-format when gzip, rotation, or work dir enabled")
    else:
        template = template.replace(REV_TOKEN, "")
    template = template.replace("<TOPIC>", topic).replace("<HOST>", identifier)
    template = template.replace("<PID>", str(pid))
    if gzip and not template.endswith(".gz"):
        template += ".gz"
    return template


def render_datetime(template: str, datetime_format: str, now: datetime) -> str:
    return template.replace(DATETIME_TOKEN, strftime(datetime_format, now))


def render_rev(name: str, rev: int) -> str:
    return name.replace(REV_TOKEN, f"-{rev:06d}")


# -- parsing names back (nsq-replay) ------------------------------------------------------------

_TOPIC_CHARS = r"[.a-zA-Z0-9_-]+?(?:#ephemeral)?"


class NamePattern:
    """Recognises the paths an nsq-to-file ``--filename-format`` produces (``.gz`` optional).

    A format with ``/`` is matched against as many trailing path components. ``<TOPIC>`` takes
    the shortest match that lets the rest match, and the host is taken not to contain dots (Go's
    default short host), so dotted topic names parse with the default format.
    """

    def __init__(self, filename_format: str = DEFAULT_FILENAME_FORMAT,
                 datetime_format: str = DEFAULT_DATETIME_FORMAT) -> None:
        self.parts = filename_format.count("/") + 1
        pieces = re.split(r"(<TOPIC>|<HOST>|<PID>|<DATETIME>|<REV>)", filename_format)
        out = []
        seen_topic = False
        for piece in pieces:
            if piece == "<TOPIC>":
                out.append(f"(?P<topic>{_TOPIC_CHARS})" if not seen_topic else "(?P=topic)")
                seen_topic = True
            elif piece == "<HOST>":
                out.append(r"[^/.]*")
            elif piece == "<PID>":
                out.append(r"\d+")
            elif piece == "<DATETIME>":
                out.append(f"(?:{strftime_regex(datetime_format)})")
            elif piece == "<REV>":
                out.append(r"(?:-\d{6})?")
            else:
                out.append(re.escape(piece))
        self.regex = re.compile("^" + "".join(out) + r"(?:\.gz)?$")

    def tail(self, path: str) -> str:
        """The last components of ``path`` that the format describes, joined by ``/``."""
        return "/".join(path.replace("\\", "/").split("/")[-self.parts:])

    def match(self, path: str) -> re.Match[str] | None:
        return self.regex.match(self.tail(path))

    def topic(self, path: str) -> str | None:
        """The topic the name records, or None when the path does not match the format."""
        match = self.match(path)
        if match is None or "topic" not in match.groupdict():
            return None
        return match.group("topic")


def topic_from_filename(path: str, pattern: NamePattern | None = None) -> str | None:
    """The topic an nsq-to-file file name records, or None when the name does not match."""
    return (pattern or NamePattern()).topic(path)
