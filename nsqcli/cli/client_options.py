"""``--consumer-opt`` / ``--producer-opt``: go-nsq config names (and pynsq's) -> library keywords.

One declaration per option, in the spirit of go-nsq's ``config.go``: the accepted names, the
keyword the library takes, how the value converts (go-nsq units: bare integers in durations are
milliseconds), and whether it applies to consumers, producers or both. Names accept dashes or
underscores. Unknown names are a usage error listing the valid ones. Every go-nsq v1.1.0 name
is accepted, so that ``-consumer-opt`` lines of scripts for the Go apps work: the auth and TLS
pseudo-options set what ``--auth-secret`` and ``--tls-*`` set; the few with no counterpart here
(``read_timeout``, ``local_addr``, ...) are accepted with a warning saying so.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from nsqcli.cli.values import parse_bool, parse_duration, parse_key_value

CONSUMER, PRODUCER = "consumer", "producer"
BOTH = frozenset({CONSUMER, PRODUCER})


def _seconds(value: str) -> float | int:
    seconds = parse_duration(value, bare_unit="ms")
    return int(seconds) if seconds == int(seconds) else seconds


def _milliseconds(value: str) -> int:
    text = value.strip()
    if text == "-1":  # go-nsq sends an exact -1 as "disabled"
        return -1
    return int(round(parse_duration(text, bare_unit="ms") * 1000))


def _at_least(minimum: float, *, above: bool = False) -> Callable[[str], float | int]:
    """A duration converter with the library's range (so a bad value is a usage error now,
    not a ValueError when the tool builds its connections)."""
    def convert(value: str) -> float | int:
        seconds = _seconds(value)
        if seconds < minimum or (above and seconds == minimum):
            raise ValueError(f"must be {'>' if above else '>='} {minimum:g}s, got {value!r}")
        return seconds

    return convert


_positive_seconds = _at_least(0, above=True)
_non_negative_seconds = _at_least(0)


def _heartbeat(value: str) -> float | int:
    return -1 if value.strip() == "-1" else _at_least(1)(value)


def _msg_timeout(value: str) -> float | int:
    return _at_least(1)(value)  # nsqd's minimum client msg_timeout is 1s


def _output_buffer_size(value: str) -> int:
    size = _int(value)
    if size not in (-1, 0) and size < 64:
        raise ValueError(f"must be -1 (off), 0 (nsqd's default) or >= 64 bytes, got {size}")
    return size


def _output_buffer_timeout(value: str) -> int:
    ms = _milliseconds(value)
    if ms < -1:
        raise ValueError(f"must be -1 (off), 0 (nsqd's default) or > 0, got {value!r}")
    return ms


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None


def _non_negative_int(value: str) -> int:
    number = _int(value)
    if number < 0:
        raise ValueError(f"must be >= 0, got {number}")
    return number


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"must be between 0 and 1, got {number}")
    return number


def _deflate_level(value: str) -> int:
    level = _int(value)
    if not 1 <= level <= 9:
        raise ValueError(f"must be 1-9, got {level}")
    return level


def _sample_rate(value: str) -> int:
    rate = _int(value)
    if not 0 <= rate <= 99:
        raise ValueError(f"must be 0-99, got {rate}")
    return rate


def _text(value: str) -> str:
    return value


def _strategy(value: str) -> str:
    name = value.strip().lower().replace("-", "_")
    if name not in ("exponential", "full_jitter", "pynsq"):
        raise ValueError(f"must be exponential, full_jitter or pynsq, got {value!r}")
    return name


def _existing_file(value: str) -> str:
    import os

    if not os.path.isfile(value):
        raise ValueError(f"no such file {value!r}")
    return value


_TLS_VERSIONS = ("ssl3.0", "tls1.0", "tls1.1", "tls1.2")


def _tls_min_version(value: str) -> str:
    """go-nsq's values; nsqcli's TLS floor (Python's default context) is TLS 1.2 already."""
    if value.strip().lower() not in _TLS_VERSIONS:
        raise ValueError(f"must be one of {', '.join(_TLS_VERSIONS)}, got {value!r}")
    return value.strip().lower()


def _frame_size(value: str) -> int:
    size = _int(value)
    if size < 64:
        raise ValueError(f"must be >= 64 bytes, got {size}")
    return size


class ClientOption(NamedTuple):  # a NamedTuple: cheap to build at start-up
    names: tuple[str, ...]  # first = canonical go-nsq name
    keyword: str  # library keyword argument
    convert: Callable[[str], Any]
    roles: frozenset = BOTH
    target: str = "conn"  # "conn" (AsyncConn), "reader" (Reader), "publisher" (nsqcli.publisher.engine),
    # "tls" (the --tls-* flags' settings) or IGNORED (accepted for go-nsq's sake, with a warning)
    help: str = ""


IGNORED = "ignored"
#: go-nsq options with no counterpart here: accepted (scripts for the Go apps run), warned once.
_NO_EFFECT = "no effect in nsqcli"


OPTIONS: tuple[ClientOption, ...] = (
    ClientOption(("dial_timeout", "timeout"), "timeout", _positive_seconds, help="per-stage connect timeout"),
    ClientOption(("heartbeat_interval",), "heartbeat_interval", _heartbeat),
    ClientOption(("msg_timeout",), "msg_timeout", _msg_timeout, frozenset({CONSUMER})),
    ClientOption(("output_buffer_size",), "output_buffer_size", _output_buffer_size),
    ClientOption(("output_buffer_timeout",), "output_buffer_timeout", _output_buffer_timeout),
    ClientOption(("sample_rate",), "sample_rate", _sample_rate, frozenset({CONSUMER})),
    ClientOption(("user_agent",), "user_agent", _text),
    ClientOption(("hostname",), "hostname", _text),
    ClientOption(("snappy",), "snappy", parse_bool),
    ClientOption(("deflate",), "deflate", parse_bool),
    ClientOption(("deflate_level",), "deflate_level", _deflate_level),
    ClientOption(("tls_v1",), "tls_v1", parse_bool),
    ClientOption(("default_requeue_delay", "requeue_delay"), "requeue_delay", _non_negative_seconds,
                 frozenset({CONSUMER})),
    ClientOption(("max_requeue_delay",), "max_requeue_delay", _non_negative_seconds, frozenset({CONSUMER})),
    ClientOption(("max_in_flight",), "max_in_flight", _non_negative_int, frozenset({CONSUMER}),
                 "reader"),
    ClientOption(("max_attempts", "max_tries"), "max_tries", _non_negative_int,
                 frozenset({CONSUMER}), "reader"),
    ClientOption(("lookupd_poll_interval",), "lookupd_poll_interval", _positive_seconds,
                 frozenset({CONSUMER}), "reader"),
    ClientOption(("lookupd_poll_jitter",), "lookupd_poll_jitter", _fraction,
                 frozenset({CONSUMER}), "reader"),
    ClientOption(("lookupd_poll_timeout", "lookupd_request_timeout"), "lookupd_request_timeout",
                 _positive_seconds, frozenset({CONSUMER}), "reader"),
    ClientOption(("lookupd_connect_timeout",), "lookupd_connect_timeout", _positive_seconds,
                 frozenset({CONSUMER}), "reader"),
    ClientOption(("max_backoff_duration",), "max_backoff_duration", _non_negative_seconds,
                 frozenset({CONSUMER}), "reader"),
    ClientOption(("low_rdy_idle_timeout",), "low_rdy_idle_timeout", _positive_seconds,
                 frozenset({CONSUMER}), "reader"),
    ClientOption(("low_rdy_timeout",), "low_rdy_timeout", _positive_seconds, frozenset({CONSUMER}),
                 "reader", "how long a busy nsqd keeps its RDY while another waits with none"),
    ClientOption(("backoff_strategy",), "backoff_strategy", _strategy, frozenset({CONSUMER}),
                 "reader", "exponential, full_jitter or pynsq"),
    ClientOption(("backoff_multiplier",), "backoff_multiplier", _non_negative_seconds, frozenset({CONSUMER}),
                 "reader"),
    ClientOption(("rdy_redistribute_interval",), "rdy_redistribute_interval", _positive_seconds,
                 frozenset({CONSUMER}), "reader"),
    ClientOption(("reconnect_interval",), "reconnect_interval", _positive_seconds, frozenset({CONSUMER}),
                 "reader"),
    ClientOption(("max_reconnect_interval",), "max_reconnect_interval", _positive_seconds,
                 frozenset({CONSUMER}), "reader"),
    ClientOption(("close_timeout",), "close_timeout", _non_negative_seconds, frozenset({CONSUMER}), "reader",
                 "how long a graceful stop waits for in-flight messages"),
    ClientOption(("max_frame_size",), "max_frame_size", _frame_size, frozenset({CONSUMER}),
                 help="refuse frames from nsqd larger than this (go-nsq's max_msg_size)"),
    ClientOption(("max_msg_size",), "max_msg_size", _non_negative_int, frozenset({PRODUCER}),
                 "publisher", "largest message nsqd accepts (default: learned, else 1 MiB)"),
    ClientOption(("max_body_size",), "max_body_size", _non_negative_int, frozenset({PRODUCER}),
                 "publisher", "largest MPUB body nsqd accepts (default: learned, else 5 MiB)"),
    # go-nsq's auth and TLS pseudo-options: the same settings as --auth-secret and --tls-*
    ClientOption(("auth_secret",), "auth_secret", _text),
    ClientOption(("tls_root_ca_file",), "ca_file", _existing_file, target="tls"),
    ClientOption(("tls_cert",), "cert", _existing_file, target="tls"),
    ClientOption(("tls_key",), "key", _existing_file, target="tls"),
    ClientOption(("tls_insecure_skip_verify",), "insecure", parse_bool, target="tls"),
    ClientOption(("tls_min_version",), "min_version", _tls_min_version, target=IGNORED,
                 help="nsqcli never goes below TLS 1.2"),
    ClientOption(("read_timeout",), "read_timeout", _positive_seconds, target=IGNORED,
                 help=_NO_EFFECT + " (heartbeats detect a dead nsqd)"),
    ClientOption(("write_timeout",), "write_timeout", _positive_seconds, target=IGNORED,
                 help=_NO_EFFECT),
    ClientOption(("local_addr",), "local_addr", _text, target=IGNORED, help=_NO_EFFECT),
    ClientOption(("client_id",), "client_id", _text, target=IGNORED,
                 help=_NO_EFFECT + " (the short host name is sent)"),
    ClientOption(("skip_lookupd_authorization",), "skip_lookupd_authorization", parse_bool,
                 frozenset({CONSUMER}), IGNORED, _NO_EFFECT),
)


#: go-nsq v1.1.0's Config names (with its TLS pseudo-options): one Config serves consumers and
#: producers there, so a consumer setting given to a producer is accepted, and does nothing.
GO_NSQ_NAMES = frozenset({
    "dial_timeout", "read_timeout", "write_timeout", "local_addr", "lookupd_poll_interval",
    "lookupd_poll_jitter", "lookupd_poll_timeout", "max_requeue_delay", "default_requeue_delay",
    "backoff_strategy", "max_backoff_duration", "backoff_multiplier", "max_attempts",
    "low_rdy_idle_timeout", "low_rdy_timeout", "rdy_redistribute_interval", "client_id",
    "hostname", "user_agent", "heartbeat_interval", "sample_rate", "tls_v1", "deflate",
    "deflate_level", "snappy", "output_buffer_size", "output_buffer_timeout", "max_in_flight",
    "msg_timeout", "auth_secret", "skip_lookupd_authorization", "tls_root_ca_file",
    "tls_insecure_skip_verify", "tls_cert", "tls_key", "tls_min_version",
})


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _index(role: str) -> dict[str, ClientOption]:
    return {name: opt for opt in OPTIONS if role in opt.roles for name in opt.names}


def valid_names(role: str) -> list[str]:
    return sorted(_index(role))


def option_role(option: ClientOption) -> str:
    return CONSUMER if option.roles == frozenset({CONSUMER}) else PRODUCER


def ignored_names(role: str) -> list[str]:
    """The go-nsq names accepted for compatibility that change nothing (said in --help)."""
    return sorted(name for name, opt in _index(role).items() if opt.target == IGNORED)


def empty_result() -> dict[str, dict[str, Any]]:
    return {"conn": {}, "reader": {}, "publisher": {}, "tls": {}, IGNORED: {}}


def parse_client_options(items: tuple[str, ...] | list[str], role: str) -> dict[str, dict[str, Any]]:
    """``["key=value", ...]`` -> ``{"conn": {...}, "reader": {...}, "publisher": {...},
    "tls": {...}, "ignored": {go-nsq name: why}}``.

    Raises ValueError naming the bad option (and listing the valid names for an unknown one).
    """
    index = _index(role)
    result = empty_result()
    for item in items:
        raw_key, value = parse_key_value(item)
        key = _key(raw_key)
        option, ignored = index.get(key), None
        if option is None and key in GO_NSQ_NAMES:  # the other role's: checked, then ignored
            option = _index(CONSUMER if role == PRODUCER else PRODUCER).get(key)
            if option is not None:
                ignored = f"a {option_role(option)} option, no effect on a {role} (as in go-nsq)"
        if option is None:
            raise ValueError(
                f"unknown {role} option {raw_key!r}; valid options: {', '.join(valid_names(role))}"
            )
        try:
            converted = option.convert(value)
        except ValueError as exc:
            raise ValueError(f"invalid value for {role} option {raw_key!r}: {exc}") from None
        if ignored or option.target == IGNORED:
            result[IGNORED][option.names[0]] = ignored or option.help
        else:
            result[option.target][option.keyword] = converted
    return result
