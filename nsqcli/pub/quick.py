"""nsq-pub's quick path: a few records to one nsqd with a blocking socket, no event loop.

``echo hello | nsq-pub --topic t`` spends most of its life importing asyncio and tornado; for a
small, already complete input and one nsqd, this path publishes one MPUB over a plain socket with
the sans-I/O protocol core and returns in a few milliseconds. It reports success, and a connect
or handshake stage that timed out (the engine would wait as long again for the same answer, and
then say the same); on anything else unusual (no TLS support here, a refused connection, an
``E_*`` answer, a lost connection) it returns None and nsq-pub runs its full engine, which
retries, learns limits and explains failures. A record may then be published twice
(at-least-once), never lost.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
from typing import IO, Any, cast

from nsqcli.cli.values import split_host_port, user_agent

DEFAULT_MAX_MSG_SIZE = 1024 * 1024  # nsqd's default --max-msg-size
MAX_QUICK_BYTES = 64 * 1024  # larger inputs go through the full engine
STDIN_EOF_WAIT = 0.05  # how long to wait for a pipe's writer to finish
_SUPPORTED_CONN_KEYS = frozenset({
    "user_agent", "snappy", "deflate", "deflate_level", "auth_secret", "timeout",
    "heartbeat_interval", "hostname", "output_buffer_size", "output_buffer_timeout",
})


class Pending:
    """Input read while deciding; handed to the full engine when the quick path declines."""

    def __init__(self, data: bytes = b"", complete: bool = False) -> None:
        self.data = data
        self.complete = complete


def read_small_stdin(stream: IO[bytes]) -> Pending:
    """Read stdin while it is quick and small: complete=True when EOF came within the limits."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return Pending()
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + STDIN_EOF_WAIT
    while size <= MAX_QUICK_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            return Pending(b"".join(chunks), complete=True)
        chunks.append(chunk)
        size += len(chunk)
    return Pending(b"".join(chunks), complete=False)


class SignalGuard:
    """SIGINT/SIGTERM while the quick path waits for nsqd (the event loop's handlers are not
    installed yet): the first is noted (``signal_name``) and the publish finishes; a second one
    exits at once with 130, as :mod:`nsqcli.cli.runner` does on the full path."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.signal_name is not None:
            self.console.error(f"{name} again: exiting at once")
            os._exit(130)
        self.signal_name = name
        self.console.info(f"{name}: finishing what is in flight (send it again to exit at once)")

    def __enter__(self) -> "SignalGuard":
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._on_signal)
            except ValueError:  # not the main thread: no handlers
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def publish_simple(prog: str, address: str, topic: str, messages: list[bytes],
                   quiet: bool) -> Pending:
    """The click-free path (:mod:`nsqcli.pub.fast`): publish ``messages`` (or newline-delimited
    stdin when there are none) with default options; exits when nsqd acknowledged them,
    otherwise returns what was read from stdin for the full engine."""
    from nsqcli.cli.console import NORMAL, QUIET, Console

    console = Console(prog, QUIET if quiet else NORMAL)
    records, pending = quick_records(messages, b"\n")
    if records is not None:
        publish_or_exit(console, address, topic, records, {"user_agent": user_agent(prog)},
                        DEFAULT_MAX_MSG_SIZE)
    return pending


def quick_records(messages: list[bytes], delimiter: bytes) -> tuple[list[bytes] | None, Pending]:
    """The records to publish quickly: the non-empty ``messages``, or else stdin split on
    ``delimiter`` when it is small and complete. None (with what stdin gave so far) otherwise."""
    if messages:
        return [message for message in messages if message], Pending()
    pending = read_small_stdin(stdin_stream())
    if not pending.complete:
        return None, pending
    return [record for record in pending.data.split(delimiter) if record], pending


def publish_or_exit(console: Any, address: str, topic: str, records: list[bytes],
                    conn_kwargs: dict, max_msg_size: int) -> None:
    """Publish quickly and exit with the tools' status when nsqd acknowledged (or a signal came);
    return when the full engine should take over."""
    from nsqcli.cli.exit_codes import ExitStatus
    from nsqcli.cli.runner import exit_with

    from nsqcli.lib.protocol.errors import NSQTimeoutError

    with SignalGuard(console) as interrupted:
        try:
            acknowledged = publish_quick(address, topic, records, conn_kwargs, max_msg_size)
        except NSQTimeoutError as exc:  # what the engine says after the same wait
            from nsqcli.cli.exit_codes import AddressError
            from nsqcli.cli.runner import report_exception

            exit_with(report_exception(
                AddressError(address, exc, f"connecting to publish to topic {topic}"), console))
    if interrupted.signal_name is not None and not acknowledged:  # no engine retry after a stop
        console.error(f"{len(records)} of {len(records)} records were not acknowledged by nsqd")
        exit_with(ExitStatus.NOT_ACKNOWLEDGED)
    if acknowledged:
        tell = console.notice if interrupted.signal_name else console.info  # as pub._finish
        tell(f"{len(records)} of {len(records)} records acknowledged")
        exit_with(ExitStatus.INTERRUPTED if interrupted.signal_name else ExitStatus.SUCCESS)


def eligible(address_count: int, conn_kwargs: dict, rate: object, defer: object) -> bool:
    return (address_count == 1 and rate is None and defer is None
            and set(conn_kwargs) <= _SUPPORTED_CONN_KEYS)


def publish_quick(address: str, topic: str, records: list[bytes], conn_kwargs: dict,
                  max_msg_size: int) -> bool:
    """Publish ``records`` (non-empty, each <= max_msg_size) as one MPUB; True only on OK."""
    if not records or max(map(len, records)) > max_msg_size:
        return False
    if sum(map(len, records)) + 4 * len(records) > MAX_QUICK_BYTES:
        return False
    from nsqcli.lib.protocol.errors import NSQTimeoutError

    try:
        return _publish(address, topic, records, conn_kwargs)
    except NSQTimeoutError:
        raise
    except Exception:  # noqa: BLE001 - any failure: the full engine retries and explains it
        return False


def _publish(address: str, topic: str, records: list[bytes], kwargs: dict) -> bool:
    from nsqcli.lib.protocol import events as ev
    from nsqcli.lib.protocol.client import ClientProtocol
    from nsqcli.lib.protocol.errors import NSQTimeoutError
    from nsqcli.lib.protocol.identify import build_identify

    hostname = kwargs.get("hostname") or socket.gethostname()
    heartbeat = kwargs.get("heartbeat_interval", 30)
    identify = build_identify(
        client_id=hostname.split(".")[0], hostname=hostname,
        user_agent=kwargs.get("user_agent", "nsq-pub"),
        heartbeat_interval_ms=-1 if heartbeat == -1 else int(heartbeat * 1000),
        snappy=bool(kwargs.get("snappy")), deflate=bool(kwargs.get("deflate")),
        deflate_level=kwargs.get("deflate_level", 6),
        output_buffer_size=kwargs.get("output_buffer_size", 16 * 1024),
        output_buffer_timeout_ms=kwargs.get("output_buffer_timeout", 250),
    )
    protocol = ClientProtocol(identify, kwargs.get("auth_secret"))
    host, port = split_host_port(address)
    # each stage gets the connection's timeout, as AsyncConn gives it (the answer to the MPUB
    # itself gets more: the engine would resend it, maybe twice)
    timeout = float(kwargs.get("timeout", 1.0))
    try:
        sock = _connect(host, port, timeout)
    except TimeoutError:
        raise NSQTimeoutError("while connecting", timeout, address) from None
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(protocol.initiate())
        published = False
        stage, deadline = "during IDENTIFY", time.monotonic() + timeout
        while True:
            sock.settimeout(timeout * 5 if published else max(0.001, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if published:
                    return False
                raise NSQTimeoutError(stage, timeout, address) from None
            if not data:
                return False
            for event in protocol.receive_data(data):
                if isinstance(event, ev.AuthRequested):
                    stage, deadline = "during AUTH", time.monotonic() + timeout
                    sock.sendall(protocol.encode_outgoing(protocol.auth_command()))
                elif isinstance(event, ev.HandshakeComplete) and not published:
                    published = True
                    command = protocol.multi_publish(topic, records)
                    sock.sendall(protocol.encode_outgoing(command))
                elif isinstance(event, ev.Heartbeat):
                    sock.sendall(protocol.encode_outgoing(protocol.nop()))
                elif isinstance(event, ev.Response) and event.command == b"MPUB":
                    return event.data == b"OK"
                elif isinstance(event, (ev.ErrorReceived, ev.StartTLS)):
                    return False


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    """socket.create_connection, but an ASCII host goes to getaddrinfo as bytes: a str host
    makes Python load the idna codec (and unicodedata), a noticeable part of a 1-message run."""
    query = host.encode("ascii") if host.isascii() else host
    error: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(query, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"cannot resolve {host}")


def stdin_stream() -> IO[bytes]:
    # a stand-in stdin without a binary buffer (a test's) is used as it is
    return cast("IO[bytes]", getattr(sys.stdin, "buffer", sys.stdin))
