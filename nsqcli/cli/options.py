"""Shared click options, defined once for every tool, and the settings they build.

Decorators (apply to a click command; each adds its options to the command's keyword arguments):

* :func:`connection_options` — ``--nsqd-tcp-address`` / ``--lookupd-http-address`` (repeatable;
  env ``NSQD_TCP_ADDRESS`` / ``NSQLOOKUPD_HTTP_ADDRESS``, comma-separated)
* :func:`http_client_options` — ``--nsqd-http-address`` / ``--lookupd-http-address`` and the
  HTTP timeouts, for the tools that use nsqd's and nsqlookupd's HTTP API
* :func:`tls_options` — ``--tls --tls-ca-file --tls-cert --tls-key --tls-insecure-skip-verify``
* :func:`compression_options` — ``--snappy --deflate --deflate-level``
* :func:`auth_options` — ``--auth-secret`` (env ``NSQ_AUTH_SECRET``) / ``--auth-secret-file``
* :func:`consumer_options` / :func:`producer_options` — ``--consumer-opt`` / ``--producer-opt``
* :func:`output_options` — ``-v/--verbose`` (repeatable) and ``-q/--quiet``; and ``--version``
* :func:`go_log_options` — Go nsq_to_file's ``--log-level`` and ``--log-prefix``

:func:`client_options` applies connection + TLS + compression + auth + the role's ``*-opt``.
In the command body, :func:`pop_settings` removes all of those keyword arguments and returns a
:class:`ClientSettings`; :func:`pop_console` builds the :class:`~nsqcli.cli.console.Console`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import click

from nsqcli import __version__
from nsqcli.cli.client_options import CONSUMER, IGNORED, PRODUCER, empty_result, ignored_names
from nsqcli.cli.client_options import parse_client_options, valid_names
from nsqcli.cli.console import DEBUG, NORMAL, QUIET, VERBOSE, Console
from nsqcli.cli.values import DEFAULT_NSQD_HTTP_ADDRESS, DEFAULT_NSQD_TCP_ADDRESS, parse_delimiter
from nsqcli.cli.values import parse_duration, parse_http_address
from nsqcli.cli.values import parse_tcp_address, user_agent  # noqa: F401 - user_agent: the tools import it here
F = Callable[..., Any]


# ---- parameter types ----------------------------------------------------------------------------


class _ValueType(click.ParamType):
    """A click type around a pure parser from :mod:`nsqcli.cli.values` (ValueError -> usage error)."""

    envvar_list_splitter = ","

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self._parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class AddressList(_ValueType):
    """A repeatable address option; each value (flag or env) may hold several, comma-separated."""

    def split_envvar_value(self, rv: str) -> list[str]:
        return [part.strip() for part in rv.split(",") if part.strip()]


def _duration_flag(text: str) -> float:
    """A duration flag of the tools: none of them gives a negative duration a meaning."""
    seconds = parse_duration(text)
    if seconds < 0:
        raise ValueError(f"invalid duration {text!r}: must not be negative")
    return seconds


def _rate_flag(text: str) -> float | None:
    """Records per second; 0 means no limit, as in Go's ``to_nsq -rate 0``."""
    try:
        rate = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of records per second") from None
    if not 0 <= rate < float("inf"):
        raise ValueError(f"{text!r}: must be a number >= 0 (0: no limit)")
    return rate or None


DURATION = _ValueType("duration", _duration_flag)
DELIMITER = _ValueType("bytes", parse_delimiter)
RATE = _ValueType("rate", _rate_flag)


def _split_commas(values: tuple[str, ...]) -> list[str]:
    """``--nsqd-tcp-address a,b`` is accepted as well as repeating the flag."""
    out: list[str] = []
    for value in values:
        out.extend(part for part in value.split(",") if part) if "," in value else out.append(value)
    return out


def _addresses(parse: Callable[[str], str]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple:
        try:
            return tuple(parse(v) for v in _split_commas(values))
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return callback


# ---- decorators ---------------------------------------------------------------------------------


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


@dataclass(frozen=True)
class Side:
    """Whose connection options a block of flags sets: the nsqds consumed from or published to
    (the flags every tool has), or nsq-to-nsq's destination (the same flags, prefixed with
    ``--destination-``). One definition of each flag serves both."""

    prefix: str = ""  # of every flag name
    nsqd: str = "nsqd"  # in help texts
    env: bool = True  # addresses from NSQD_TCP_ADDRESS / NSQLOOKUPD_HTTP_ADDRESS
    secret_env: str = "NSQ_AUTH_SECRET"

    def flag(self, name: str) -> str:
        return f"--{self.prefix}{name}"

    def key(self, name: str) -> str:
        """The keyword argument click makes of ``flag(name)``."""
        return (self.prefix + name).replace("-", "_")


SOURCE = Side()
DESTINATION = Side("destination-", "the destination nsqd", env=False,
                   secret_env="NSQ_DESTINATION_AUTH_SECRET")


def _lookupd_http_address_option(side: Side) -> Callable[[F], F]:
    env = "NSQLOOKUPD_HTTP_ADDRESS" if side.env else None
    where = "; env NSQLOOKUPD_HTTP_ADDRESS, comma-separated" if env else ""
    help_text = (f"nsqlookupd HTTP address (repeatable{where})." if side is SOURCE else
                 "Destination nsqlookupd HTTP address (repeatable): publish to the nsqds it "
                 "lists (/nodes).")
    return click.option(
        side.flag("lookupd-http-address"), multiple=True, metavar="HOST:PORT", envvar=env,
        type=AddressList("host:port", str), callback=_addresses(parse_http_address),
        help=help_text,
    )


lookupd_http_address_option = _lookupd_http_address_option(SOURCE)


def _nsqd_address_option(kind: str, default: str | None, parse: Callable[[str, str], str],
                         side: Side = SOURCE) -> Callable[[F], F]:
    """``--nsqd-tcp-address`` or ``--nsqd-http-address`` (``kind``)."""
    env = f"NSQD_{kind.upper()}_ADDRESS" if side.env else None
    what = f"{side.nsqd} {kind.upper()} address"
    where = f"; env {env}, comma-separated" if env else ""
    label = what if side is SOURCE else what[0].upper() + what[1:]
    default_text = f" Default {default} when no lookupd is given." if default else ""
    return click.option(
        side.flag(f"nsqd-{kind}-address"), multiple=True, metavar="HOST:PORT", envvar=env,
        type=AddressList("host:port", str), callback=_addresses(lambda v: parse(v, what)),
        help=f"{label} (repeatable{where}).{default_text}",
    )


def _connection_options(side: Side) -> Callable[[F], F]:
    default = DEFAULT_NSQD_TCP_ADDRESS if side is SOURCE else None
    return _stack(_nsqd_address_option("tcp", default, parse_tcp_address, side),
                  _lookupd_http_address_option(side))


connection_options = _connection_options(SOURCE)


def _positive_duration(text: str) -> float:
    seconds = _duration_flag(text)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return seconds


#: a timeout or a period (nsq-stat's --interval): zero would mean no time at all
POSITIVE_DURATION = _ValueType("duration", _positive_duration)


#: The tools that speak nsqd's and nsqlookupd's HTTP API (``nsqcli topic|channel``, ``nsq-stat``):
#: ``--nsqd-http-address`` and the HTTP client timeouts of nsqadmin and nsq_stat.
http_client_options = _stack(
    _nsqd_address_option("http", DEFAULT_NSQD_HTTP_ADDRESS, parse_http_address),
    lookupd_http_address_option,
    click.option("--http-client-connect-timeout", type=POSITIVE_DURATION,
                 default="2s", show_default=True, help="Timeout connecting to nsqd or nsqlookupd."),
    click.option("--http-client-request-timeout", type=POSITIVE_DURATION,
                 default="5s", show_default=True,
                 help="Timeout of one HTTP request to nsqd or nsqlookupd."),
)


def _tls_options(side: Side) -> Callable[[F], F]:
    nsqd, tls = side.nsqd, side.flag("tls")
    return _stack(
        click.option(tls, is_flag=True,
                     help=f"Negotiate TLS with {nsqd} (implied by other {tls}-* flags)."),
        click.option(side.flag("tls-ca-file"), type=click.Path(exists=True, dir_okay=False),
                     default=None,
                     help=f"CA bundle that verifies {nsqd}'s certificate (default: system CAs)."),
        click.option(side.flag("tls-cert"), type=click.Path(exists=True, dir_okay=False),
                     default=None, help="Client certificate (PEM) for TLS client authentication."),
        click.option(side.flag("tls-key"), type=click.Path(exists=True, dir_okay=False),
                     default=None, help=f"Private key (PEM) of {tls}-cert."),
        click.option(side.flag("tls-insecure-skip-verify"), is_flag=True,
                     help=f"Do not verify {nsqd}'s certificate (insecure; prints a warning)."),
    )


def _compression_options(side: Side) -> Callable[[F], F]:
    with_whom = "" if side is SOURCE else f" with {side.nsqd}"
    return _stack(
        click.option(side.flag("snappy"), is_flag=True,
                     help=f"Negotiate snappy compression{with_whom}."),
        click.option(side.flag("deflate"), is_flag=True,
                     help=f"Negotiate deflate compression{with_whom}."),
        click.option(side.flag("deflate-level"), type=click.IntRange(1, 9), default=None,
                     metavar="1-9",
                     help=f"Deflate level (default 6; implies {side.flag('deflate')})."),
    )


def _auth_options(side: Side) -> Callable[[F], F]:
    env = side.secret_env
    return _stack(
        click.option(side.flag("auth-secret"), envvar=env, default=None, metavar="SECRET",
                     show_envvar=True,
                     help=f"Secret for {side.nsqd}'s AUTH (env {env}; never echoed)."
                     if side is not SOURCE else f"Secret for nsqd AUTH (env {env}; never echoed)."),
        click.option(side.flag("auth-secret-file"), type=click.Path(exists=True, dir_okay=False),
                     default=None, help="Read the AUTH secret from this file (first line)."),
    )


tls_options = _tls_options(SOURCE)
compression_options = _compression_options(SOURCE)
auth_options = _auth_options(SOURCE)


def _opt_list(role: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict:
        try:
            return parse_client_options(values, role)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return callback


def _opt_help(role: str) -> str:
    ignored = ignored_names(role)
    names = [name for name in valid_names(role) if name not in ignored]
    others = " go-nsq's consumer options are accepted too, and ignored as go-nsq does." \
        if role == PRODUCER else (
            " A message that keeps failing is given up only with max_attempts=N; nsqd redelivers"
            " it after requeue_delay x attempts (and, where a failure backs off, after backoff"
            " windows that grow to max_backoff_duration), so reaching N can take minutes: lower"
            " those to shorten it.")
    return (f"Any {role} option as key=value (or go-nsq's key,value; a bare key means true): "
            + ", ".join(names) + ". Accepted for go-nsq's sake with a warning that they change "
            "nothing: " + ", ".join(ignored) + "." + others)


consumer_options = click.option(
    "--consumer-opt", multiple=True, metavar="KEY=VALUE", callback=_opt_list(CONSUMER),
    help=_opt_help(CONSUMER),
)

producer_options = click.option(
    "--producer-opt", multiple=True, metavar="KEY=VALUE", callback=_opt_list(PRODUCER),
    help=_opt_help(PRODUCER),
)

output_options = _stack(
    click.option("-v", "--verbose", count=True, help="More diagnostics on stderr (-vv for debug)."),
    click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr."),
    click.version_option(__version__, "--version", message="%(prog)s (nsqcli) %(version)s"),
)


def client_options(role: str, side: Side = SOURCE) -> Callable[[F], F]:
    """Connection, TLS, compression, auth and ``--<role>-opt`` options in one decorator."""
    role_option = consumer_options if role == CONSUMER else producer_options
    return _stack(_connection_options(side), _tls_options(side), _compression_options(side),
                  _auth_options(side), role_option)


# ---- settings -----------------------------------------------------------------------------------


@dataclass
class ClientSettings:
    """What the shared options say, ready for the library (secret kept out of repr)."""

    nsqd_tcp_addresses: list[str]
    lookupd_http_addresses: list[str]
    conn_kwargs: dict[str, Any] = field(default_factory=dict, repr=False)
    reader_kwargs: dict[str, Any] = field(default_factory=dict)
    publisher_kwargs: dict[str, Any] = field(default_factory=dict)
    insecure_tls: bool = False
    ignored_options: dict[str, str] = field(default_factory=dict)  # go-nsq name -> why
    side: Side = SOURCE

    @property
    def has_auth_secret(self) -> bool:
        return bool(self.conn_kwargs.get("auth_secret"))


_SHARED_KEYS = (
    "nsqd-tcp-address", "lookupd-http-address", "tls", "tls-ca-file", "tls-cert", "tls-key",
    "tls-insecure-skip-verify", "snappy", "deflate", "deflate-level", "auth-secret",
    "auth-secret-file",
)


def _usage(message: str) -> click.UsageError:
    return click.UsageError(message, ctx=click.get_current_context(silent=True))


def pop_settings(params: dict[str, Any], user_agent: str, default_nsqd: bool = True,
                 side: Side = SOURCE, role: str | None = None) -> ClientSettings:
    """Remove the shared options of ``side`` from a command's keyword arguments and build the
    settings; ``role`` names the ``--<role>-opt`` they take (default: the command's only one).

    Raises :class:`click.UsageError` (exit 2) for contradictory flags.
    """
    values = {key.replace("-", "_"): params.pop(side.key(key), None) for key in _SHARED_KEYS}
    flag = side.flag
    if role is None:
        consumer, producer = params.pop("consumer_opt", None), params.pop("producer_opt", None)
        role_opts = consumer or producer
    else:
        role_opts = params.pop(f"{role}_opt", None)
    nsqd = list(values["nsqd_tcp_address"] or ())
    lookupd = list(values["lookupd_http_address"] or ())
    if not nsqd and not lookupd and default_nsqd:
        nsqd = [DEFAULT_NSQD_TCP_ADDRESS]
    opts = role_opts or empty_result()
    conn: dict[str, Any] = {"user_agent": user_agent}
    conn.update(opts["conn"])
    for name, key in (("tls_ca_file", "ca_file"), ("tls_cert", "cert"), ("tls_key", "key"),
                      ("tls_insecure_skip_verify", "insecure")):  # go-nsq's tls_* options
        values[name] = values[name] or opts["tls"].get(key)

    if values["snappy"] and (values["deflate"] or values["deflate_level"]):
        raise _usage(f"{flag('snappy')} and {flag('deflate')} are mutually exclusive; choose one")
    if values["snappy"]:
        conn["snappy"] = True
    if values["deflate"] or values["deflate_level"]:
        conn["deflate"] = True
        conn["deflate_level"] = values["deflate_level"] or 6

    tls_files = values["tls_ca_file"] or values["tls_cert"] or values["tls_key"]
    insecure = bool(values["tls_insecure_skip_verify"])
    if values["tls"] or tls_files or insecure:
        if bool(values["tls_cert"]) != bool(values["tls_key"]):
            raise _usage(f"{flag('tls-cert')} and {flag('tls-key')} must be given together")
        conn["tls_v1"] = True
        conn["tls_options"] = tls_options_dict(
            values["tls_ca_file"], values["tls_cert"], values["tls_key"], insecure
        )

    secret = values["auth_secret"]
    if values["auth_secret_file"]:
        if secret:
            raise _usage(f"give either {flag('auth-secret')} (or {side.secret_env}) or "
                         f"{flag('auth-secret-file')}, not both")
        secret = read_secret_file(values["auth_secret_file"], flag("auth-secret-file"))
    if secret:
        conn["auth_secret"] = secret
    return ClientSettings(nsqd, lookupd, conn, dict(opts["reader"]), dict(opts["publisher"]), insecure,
                          dict(opts[IGNORED]), side)


@dataclass
class HttpSettings:
    """What :func:`http_client_options` say: the nsqds and nsqlookupds, and the timeouts."""

    nsqd_http_addresses: list[str]
    lookupd_http_addresses: list[str]
    timeouts: Any  # nsqcli.cli.nsq_http.Timeouts


def pop_http_settings(params: dict[str, Any]) -> HttpSettings:
    """Remove :func:`http_client_options` from a command's keyword arguments; the nsqd on
    127.0.0.1:4151 when neither an nsqd nor an nsqlookupd is given."""
    from nsqcli.cli.nsq_http import Timeouts

    nsqds = list(params.pop("nsqd_http_address", None) or ())
    lookupds = list(params.pop("lookupd_http_address", None) or ())
    if not nsqds and not lookupds:
        nsqds = [DEFAULT_NSQD_HTTP_ADDRESS]
    timeouts = Timeouts(params.pop("http_client_connect_timeout"),
                        params.pop("http_client_request_timeout"))
    return HttpSettings(nsqds, lookupds, timeouts)


def tls_options_dict(ca_file: str | None, cert: str | None, key: str | None, insecure: bool) -> dict:
    """pynsq-style ``tls_options`` (wrap_socket keys) that AsyncConn maps onto an SSLContext."""
    import ssl  # only when TLS is asked for

    options: dict[str, Any] = {"cert_reqs": ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED}
    if insecure:
        options["check_hostname"] = False
    if ca_file:
        options["ca_certs"] = ca_file
    if cert:
        options["certfile"] = cert
        options["keyfile"] = key
    return options


def read_secret_file(path: str, flag: str = "--auth-secret-file") -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            secret = handle.readline().rstrip("\r\n")
    except OSError as exc:
        raise _usage(f"cannot read {flag} {path}: {exc.strerror}") from None
    if not secret:
        raise _usage(f"{flag} {path} is empty")
    return secret


#: Go's -log-level (nsq_to_file) -> our verbosity: Go's "info" shows what -v shows.
GO_LOG_LEVELS = {"debug": DEBUG, "info": VERBOSE, "warn": NORMAL, "error": QUIET, "fatal": QUIET}

go_log_options = _stack(
    click.option("--log-level", type=click.Choice(list(GO_LOG_LEVELS), case_sensitive=False),
                 default=None, help="As Go's nsq_to_file: debug is -vv, info -v, warn the default, "
                 "error and fatal -q."),
    click.option("--log-prefix", default=None, metavar="TEXT",
                 help="Prefix of the diagnostic lines, as Go's nsq_to_file (default: the "
                 "program name and ': ')."),
)


def pop_console(params: dict[str, Any], prog: str) -> Console:
    """Remove -v/-q (and --log-level/--log-prefix) from the keyword arguments and build the
    invocation's Console."""
    verbose = params.pop("verbose", 0) or 0
    quiet = params.pop("quiet", False)
    log_level = params.pop("log_level", None)
    log_prefix = params.pop("log_prefix", None)
    if quiet and verbose:
        raise _usage("-q/--quiet and -v/--verbose contradict each other")
    if log_level and (quiet or verbose):
        raise _usage("give either --log-level or -q/-v, not both")
    level = QUIET if quiet else {0: NORMAL, 1: VERBOSE}.get(verbose, DEBUG)
    if log_level:
        level = GO_LOG_LEVELS[log_level.lower()]
    console = Console(prog, level)
    if log_prefix is not None:
        console.prefix = log_prefix
    return console


def warn_settings(settings: ClientSettings, console: Console) -> None:
    side = settings.side
    if settings.insecure_tls:
        console.warning(f"{side.flag('tls-insecure-skip-verify')}: {side.nsqd}'s certificate is "
                        "NOT verified")
    for name, why in settings.ignored_options.items():
        console.warning(f"go-nsq option {name} accepted but ignored: {why}")


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
