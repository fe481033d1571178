"""``nsqcli dev-server``: an embedded nsqd registered with an embedded nsqlookupd, in one process.

For development, demos and tests -- in memory, never a production broker. It listens on
loopback only unless ``--allow-remote`` is given (it has no authentication of its own). Also
runs on its own: ``python -m nsqcli.dev_server``.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

import click

from nsqcli import __version__
from nsqcli.cli.console import DEBUG, NORMAL, QUIET, VERBOSE, Console
from nsqcli.cli.exit_codes import ExitStatus, ToolError, error_text, exit_status_help
from nsqcli.cli.go_flags import tool_command
from nsqcli.cli.options import DURATION
from nsqcli.cli.runner import Shutdown, run_to_status

PROG = "nsqcli dev-server"

# (option name, NSQDOptions field) for the limits passed through unchanged / as milliseconds
_INT_LIMITS = (
    ("max_msg_size", "max_msg_size"),
    ("max_body_size", "max_body_size"),
    ("max_rdy_count", "max_rdy_count"),
    ("mem_queue_size", "mem_queue_size"),
    ("max_channel_consumers", "max_channel_consumers"),
    ("max_deflate_level", "max_deflate_level"),
    ("max_output_buffer_size", "max_output_buffer_size"),
    ("max_bytes_per_file", "max_bytes_per_file"),
    ("sync_every", "sync_every"),
)
_DURATION_LIMITS = (
    ("msg_timeout", "msg_timeout_ms"),
    ("max_msg_timeout", "max_msg_timeout_ms"),
    ("max_req_timeout", "max_req_timeout_ms"),
    ("max_heartbeat_interval", "max_heartbeat_interval_ms"),
    ("max_output_buffer_timeout", "max_output_buffer_timeout_ms"),
    ("min_output_buffer_timeout", "min_output_buffer_timeout_ms"),
    ("output_buffer_timeout", "output_buffer_timeout_ms"),
    ("sync_timeout", "sync_timeout_ms"),
)


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IPs; the wildcard and every other name are not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _connect_host(host: str) -> str:
    """Where a local client reaches a listener bound to ``host`` (the wildcard -> loopback)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@dataclass
class DevServerConfig:
    """What the flags ask for, checked; builds the brokers' options."""

    tcp_address: str = "127.0.0.1:4150"
    http_address: str = "127.0.0.1:4151"
    lookupd_tcp_address: str | None = "127.0.0.1:4160"
    lookupd_http_address: str | None = "127.0.0.1:4161"
    broadcast_address: str = "127.0.0.1"
    nsqd_options: dict[str, Any] = field(default_factory=dict)
    lookupd_options: dict[str, Any] = field(default_factory=dict)

    def listen_addresses(self) -> list[tuple[str, str]]:
        """(flag, address) for every listener."""
        pairs = [("--tcp-address", self.tcp_address), ("--http-address", self.http_address)]
        if self.lookupd_tcp_address and self.lookupd_http_address:
            pairs += [("--lookupd-tcp-address", self.lookupd_tcp_address),
                      ("--lookupd-http-address", self.lookupd_http_address)]
        return pairs

    def non_loopback(self) -> list[tuple[str, str]]:
        from nsqcli.broker.nsqd.options import parse_address

        return [(flag, address) for flag, address in self.listen_addresses()
                if not is_loopback_host(parse_address(address)[0])]


async def serve(config: DevServerConfig, shutdown: Shutdown, console: Console,
                banner: Any = None) -> ExitStatus:
    """Start nsqlookupd (unless disabled) then nsqd; wait for the stop request; stop both."""
    from nsqcli.broker.nsqd import NSQD, NSQDOptions
    from nsqcli.broker.nsqd.options import parse_address
    from nsqcli.broker.nsqlookupd import NSQLookupd, NSQLookupdOptions

    lookupd = None
    if config.lookupd_tcp_address and config.lookupd_http_address:
        lookupd = NSQLookupd(NSQLookupdOptions(
            tcp_address=config.lookupd_tcp_address, http_address=config.lookupd_http_address,
            broadcast_address=config.broadcast_address, **config.lookupd_options))
        await _start(lookupd, "nsqlookupd", config.lookupd_tcp_address,
                     config.lookupd_http_address)
    registration = []
    if lookupd is not None:
        host = parse_address(config.lookupd_tcp_address or "")[0]
        registration = [f"{_connect_host(host)}:{lookupd.tcp_port}"]
    nsqd = NSQD(NSQDOptions(tcp_address=config.tcp_address, http_address=config.http_address,
                            broadcast_address=config.broadcast_address,
                            lookupd_tcp_addresses=registration, **config.nsqd_options))
    try:
        await _start(nsqd, "nsqd", config.tcp_address, config.http_address)
        (banner or print_banner)(console, config, nsqd, lookupd)
        await shutdown.wait()
        console.info("stopping")
    finally:
        await nsqd.stop()
        nsqd.remove_data()
        if lookupd is not None:
            await lookupd.stop()
    return ExitStatus.SUCCESS


async def _start(broker: Any, name: str, tcp_address: str, http_address: str) -> None:
    from nsqcli.broker.nsqd.datapath import DataPathError

    try:
        await broker.start()
    except (OSError, DataPathError) as error:
        raise ToolError(f"cannot start {name} on {tcp_address} / {http_address}: "
                        f"{error_text(error)}") from error


def print_banner(console: Console, config: DevServerConfig, nsqd: Any, lookupd: Any) -> None:
    """Where everything listens, on stderr (rich styling on a terminal)."""
    if console.verbosity <= QUIET:
        return
    from rich.console import Console as RichConsole
    from rich.table import Table

    def address(configured: str, port: int) -> str:
        from nsqcli.broker.nsqd.options import parse_address

        return f"{_connect_host(parse_address(configured)[0])}:{port}"

    rich = RichConsole(file=console.err, highlight=False, soft_wrap=True)
    rich.print(f"[bold]{PROG}[/bold] {__version__}: embedded nsqd"
               + (" + nsqlookupd" if lookupd else "") + " (for development)")
    nsqd_tcp = address(config.tcp_address, nsqd.tcp_port)
    table = Table.grid(padding=(0, 2))
    table.add_row("  nsqd TCP", nsqd_tcp)
    table.add_row("  nsqd HTTP", "http://" + address(config.http_address, nsqd.http_port))
    hint = f"--nsqd-tcp-address {nsqd_tcp}"
    # (lookupd runs only when both its addresses are configured)
    if lookupd is not None and config.lookupd_tcp_address and config.lookupd_http_address:
        lookupd_http = address(config.lookupd_http_address, lookupd.http_port)
        table.add_row("  nsqlookupd TCP", address(config.lookupd_tcp_address, lookupd.tcp_port))
        table.add_row("  nsqlookupd HTTP", "http://" + lookupd_http)
        hint += f" or --lookupd-http-address {lookupd_http}"
    data = nsqd.data
    table.add_row("  data path", data.path + (" (temporary: removed at exit)"
                                               if data.temporary else ""))
    rich.print(table)
    if nsqd.options.tls_cert:
        required = nsqd.options.tls_required
        rich.print(f"  TLS: {'required' if required else 'available'}"
                   + (f" ({required})" if isinstance(required, str) else ""))
    rich.print(f"Point the tools at it with {hint}. Press Ctrl-C to stop.")


def build_config(params: dict[str, Any]) -> DevServerConfig:
    """The config from the click parameters; ValueError (one line) for a bad combination."""
    from nsqcli.broker.nsqd.options import parse_address

    nsqd: dict[str, Any] = {}
    for option, name in _INT_LIMITS:
        if params.get(option) is not None:
            nsqd[name] = params[option]
    for option, name in _DURATION_LIMITS:
        if params.get(option) is not None:
            nsqd[name] = _ms(params[option])
    for name in ("snappy", "deflate"):
        if params.get(name) is not None:
            nsqd[name] = params[name]
    for name in ("tls_cert", "tls_key", "tls_root_ca_file", "tls_client_auth_policy"):
        if params.get(name):
            nsqd[name] = params[name]
    tls_required = params.get("tls_required")
    if tls_required:
        nsqd["tls_required"] = True if tls_required == "true" else (
            False if tls_required == "false" else tls_required)
    if params.get("auth_http_address"):
        nsqd["auth_http_addresses"] = list(params["auth_http_address"])
    if params.get("data_path"):
        nsqd["data_path"] = params["data_path"]
    lookupd: dict[str, Any] = {}
    if params.get("inactive_producer_timeout") is not None:
        lookupd["inactive_producer_timeout_ms"] = _ms(params["inactive_producer_timeout"])
    if params.get("tombstone_lifetime") is not None:
        lookupd["tombstone_lifetime_ms"] = _ms(params["tombstone_lifetime"])
    config = DevServerConfig(
        tcp_address=params["tcp_address"], http_address=params["http_address"],
        lookupd_tcp_address=None if params.get("no_lookupd") else params["lookupd_tcp_address"],
        lookupd_http_address=None if params.get("no_lookupd") else params["lookupd_http_address"],
        broadcast_address=params["broadcast_address"], nsqd_options=nsqd, lookupd_options=lookupd)
    for flag, address in config.listen_addresses():
        try:
            parse_address(address)
        except ValueError as error:
            raise ValueError(f"{flag}: {error}") from None
    if bool(nsqd.get("tls_cert")) != bool(nsqd.get("tls_key")):
        raise ValueError("--tls-cert and --tls-key must be given together")
    if nsqd.get("tls_required") and not nsqd.get("tls_cert"):
        raise ValueError("--tls-required needs --tls-cert and --tls-key")
    # let the brokers' own option checks speak before anything is bound
    from nsqcli.broker.nsqd import NSQDOptions
    from nsqcli.broker.nsqlookupd import NSQLookupdOptions

    NSQDOptions(tcp_address=config.tcp_address, http_address=config.http_address, **nsqd)
    NSQLookupdOptions(**lookupd)
    return config


def _fail(console: Console, message: str, status: ExitStatus = ExitStatus.USAGE) -> None:
    console.error(message)
    sys.exit(int(status))


@tool_command("dev-server",
              epilog=exit_status_help(
                  ExitStatus.ERROR, ExitStatus.USAGE, ExitStatus.INTERRUPTED,
                  ERROR="1 failure (an address cannot be listened on)",
                  INTERRUPTED="130 stopped by SIGINT/SIGTERM (Ctrl-C), its normal end"))
@click.option("--tcp-address", default="127.0.0.1:4150", show_default=True, metavar="HOST:PORT",
              help="nsqd TCP listen address (port 0: any free port).")
@click.option("--http-address", default="127.0.0.1:4151", show_default=True, metavar="HOST:PORT",
              help="nsqd HTTP listen address.")
@click.option("--lookupd-tcp-address", default="127.0.0.1:4160", show_default=True,
              metavar="HOST:PORT", help="nsqlookupd TCP listen address (nsqd registers here).")
@click.option("--lookupd-http-address", default="127.0.0.1:4161", show_default=True,
              metavar="HOST:PORT", help="nsqlookupd HTTP listen address.")
@click.option("--no-lookupd", is_flag=True, help="Run nsqd alone, without an nsqlookupd.")
@click.option("--broadcast-address", default="127.0.0.1", show_default=True,
              help="Address nsqd registers with nsqlookupd (what consumers connect to).")
@click.option("--allow-remote", is_flag=True,
              help="Allow listening on non-loopback addresses (the dev server has no security).")
@click.option("--max-msg-size", type=click.IntRange(min=1), help="Largest message in bytes "
              "(default 1048576).")
@click.option("--max-body-size", type=click.IntRange(min=1), help="Largest command body in "
              "bytes (default 5242880).")
@click.option("--max-rdy-count", type=click.IntRange(min=1), help="Largest RDY (default 2500).")
@click.option("--msg-timeout", type=DURATION, help="Default message timeout (default 60s).")
@click.option("--max-msg-timeout", type=DURATION, help="Largest client msg_timeout (default 15m).")
@click.option("--max-req-timeout", type=DURATION, help="Largest REQ/DPUB delay (default 1h).")
@click.option("--max-heartbeat-interval", type=DURATION, help="Largest client heartbeat "
              "interval (default 60s).")
@click.option("--max-output-buffer-size", type=click.IntRange(min=1),
              help="Largest client output buffer (default 65536).")
@click.option("--max-output-buffer-timeout", type=DURATION, help="(default 30s)")
@click.option("--min-output-buffer-timeout", type=DURATION, help="(default 25ms)")
@click.option("--output-buffer-timeout", type=DURATION, help="(default 250ms)")
@click.option("--mem-queue-size", type=click.IntRange(min=0), help="Messages kept in memory "
              "per topic/channel (default 10000); the rest go to the disk queue (#ephemeral "
              "topics/channels drop them).")
@click.option("--data-path", type=click.Path(exists=True, file_okay=False), help="Directory for "
              "the disk queues and metadata, kept across restarts (default: a temporary one, "
              "removed at exit).")
@click.option("--max-bytes-per-file", type=click.IntRange(min=1), help="Disk queue segment size "
              "in bytes (default 104857600).")
@click.option("--sync-every", type=click.IntRange(min=1), help="Disk queue messages written or "
              "read between fsyncs (default 2500).")
@click.option("--sync-timeout", type=DURATION, help="Longest time between disk queue fsyncs "
              "(default 2s).")
@click.option("--max-channel-consumers", type=click.IntRange(min=0),
              help="Consumers per channel (default 0: unlimited).")
@click.option("--snappy/--no-snappy", default=None, help="Offer snappy (default on).")
@click.option("--deflate/--no-deflate", default=None, help="Offer deflate (default on).")
@click.option("--max-deflate-level", type=click.IntRange(1, 9), help="(default 6)")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="TLS key.")
@click.option("--tls-root-ca-file", type=click.Path(exists=True, dir_okay=False),
              help="CA that verifies client certificates.")
@click.option("--tls-client-auth-policy", type=click.Choice(["require", "require-verify"]),
              help="Client certificate policy.")
@click.option("--tls-required", type=click.Choice(["true", "false", "tcp-https"]),
              is_flag=False, flag_value="true", default=None,
              help="Require TLS before any command (alone: true; tcp-https: TCP only).")
@click.option("--auth-http-address", multiple=True, metavar="HOST:PORT",
              help="Auth server queried for AUTH (repeatable).")
@click.option("--inactive-producer-timeout", type=DURATION, help="nsqlookupd: forget producers "
              "silent this long (default 5m).")
@click.option("--tombstone-lifetime", type=DURATION, help="nsqlookupd: how long a tombstone "
              "hides a producer (default 45s).")
@click.option("-v", "--verbose", count=True, help="Log connections (-vv: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.version_option(__version__, "--version", message="%(prog)s (nsqcli) %(version)s")
def dev_server(**params: Any) -> None:
    """Run an embedded nsqd + nsqlookupd for development (Ctrl-C stops)."""
    verbosity = QUIET if params.pop("quiet") else min(NORMAL + params.pop("verbose"), DEBUG)
    console = Console(PROG, verbosity)
    if verbosity >= VERBOSE:
        logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s",
                            level=logging.DEBUG if verbosity >= DEBUG else logging.INFO)
    try:
        config = build_config(params)
    except (ValueError, TypeError) as error:
        _fail(console, str(error))
        return
    remote = config.non_loopback()
    if remote and not params["allow_remote"]:
        flag, address = remote[0]
        _fail(console, f"refusing to listen on {address} ({flag}): not a loopback address and "
              "the dev server has no security; pass --allow-remote to do it anyway")
        return

    async def main(shutdown: Shutdown) -> ExitStatus:
        return await serve(config, shutdown, console)

    sys.exit(int(run_to_status(main, console)))  # Ctrl-C/SIGTERM: 130, as every tool


main = command = dev_server

if __name__ == "__main__":
    dev_server(prog_name=PROG)
