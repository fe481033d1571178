"""Real nsqd / nsqlookupd binaries as subprocesses (the fixtures' "real mode").

Maps the embedded brokers' option names to the daemons' command-line flags, picks free ports,
waits for ``/ping`` and stops the process again. Used by :mod:`nsqcli.testing` when
``NSQCLI_TEST_NSQD`` / ``NSQCLI_TEST_NSQLOOKUPD`` name the binaries.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

LOOPBACK = "127.0.0.1"

# Option names shared with the embedded brokers -> the Go daemons' flags.
_NSQD_VALUE_FLAGS = {
    "tls_cert": "--tls-cert",
    "tls_key": "--tls-key",
    "tls_root_ca_file": "--tls-root-ca-file",
    "tls_client_auth_policy": "--tls-client-auth-policy",
    "max_msg_size": "--max-msg-size",
    "max_body_size": "--max-body-size",
    "max_rdy_count": "--max-rdy-count",
    "max_output_buffer_size": "--max-output-buffer-size",
    "max_deflate_level": "--max-deflate-level",
    "max_channel_consumers": "--max-channel-consumers",
    "mem_queue_size": "--mem-queue-size",
    "max_bytes_per_file": "--max-bytes-per-file",
    "sync_every": "--sync-every",
    "queue_scan_selection_count": "--queue-scan-selection-count",
}
_NSQD_DURATION_FLAGS = {
    "msg_timeout_ms": "--msg-timeout",
    "max_msg_timeout_ms": "--max-msg-timeout",
    "max_req_timeout_ms": "--max-req-timeout",
    "max_heartbeat_interval_ms": "--max-heartbeat-interval",
    "max_output_buffer_timeout_ms": "--max-output-buffer-timeout",
    "min_output_buffer_timeout_ms": "--min-output-buffer-timeout",
    "output_buffer_timeout_ms": "--output-buffer-timeout",
    "sync_timeout_ms": "--sync-timeout",
}
_NSQD_BOOL_FLAGS = {"snappy": "--snappy", "deflate": "--deflate"}
_NSQD_LIST_FLAGS = {
    "auth_http_addresses": "--auth-http-address",
    "lookupd_tcp_addresses": "--lookupd-tcp-address",
}
# Embedded-only tuning knobs: they change timing, not behaviour, so real mode leaves them out.
_NSQD_EMBEDDED_ONLY = frozenset({"queue_scan_interval_ms", "queue_scan_refresh_interval_ms",
                                 "lookupd_ping_interval_ms"})
_LOOKUPD_EMBEDDED_ONLY = frozenset({"max_identify_body_size"})
_LOOKUPD_DURATION_FLAGS = {
    "inactive_producer_timeout_ms": "--inactive-producer-timeout",
    "tombstone_lifetime_ms": "--tombstone-lifetime",
}


#: fresh ports tried when a daemon finds one of them taken before it could bind it
PORT_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """The daemon exited because a port chosen for it was taken in the meantime."""


class UnsupportedOption(ValueError):
    """An option the real daemon has no flag for (e.g. nsqd's client timeout is not a flag)."""


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def nsqd_flags(options: Mapping[str, Any]) -> list[str]:
    """nsqd command-line flags for ``options`` (the NSQDOptions field names)."""
    flags: list[str] = []
    for name, value in options.items():
        if value is None or name in _NSQD_EMBEDDED_ONLY:
            continue
        if name == "data_path":  # nsqd_process passes --data-path (its own temporary one if "")
            continue
        if name in _NSQD_VALUE_FLAGS:
            flags.append(f"{_NSQD_VALUE_FLAGS[name]}={_flag_value(value)}")
        elif name in _NSQD_DURATION_FLAGS:
            flags.append(f"{_NSQD_DURATION_FLAGS[name]}={int(value)}ms")
        elif name in _NSQD_BOOL_FLAGS:
            flags.append(f"{_NSQD_BOOL_FLAGS[name]}={_flag_value(bool(value))}")
        elif name in _NSQD_LIST_FLAGS:
            flags.extend(f"{_NSQD_LIST_FLAGS[name]}={item}" for item in value)
        elif name == "tls_required":
            # bool or nsqd's third policy, "tcp-https"
            if value:
                flags.append(f"--tls-required={_flag_value(value)}")
        else:
            raise UnsupportedOption(f"nsqd has no command-line flag for option {name!r}")
    return flags


def lookupd_flags(options: Mapping[str, Any]) -> list[str]:
    flags: list[str] = []
    for name, value in options.items():
        if value is None or name in _LOOKUPD_EMBEDDED_ONLY:
            continue
        if name not in _LOOKUPD_DURATION_FLAGS:
            raise UnsupportedOption(f"nsqlookupd has no command-line flag for option {name!r}")
        flags.append(f"{_LOOKUPD_DURATION_FLAGS[name]}={int(value)}ms")
    return flags


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago (the daemon binds it right after; a small race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


#: urllib without the environment's proxies: brokers under test are always local.
direct_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when the daemon's HTTP port answers ``/ping``.

    Under ``--tls-required=true`` nsqd's plain HTTP port refuses every request, ``/ping``
    included, with ``403 {"message": "TLS_REQUIRED", ...}``: that answer means it is up too.
    """
    try:
        with direct_opener.open(f"http://{host}:{port}/ping", timeout=timeout) as reply:
            return reply.status == 200
    except urllib.error.HTTPError as error:  # before OSError: it is one
        with error:
            return error.code == 403 and b'"TLS_REQUIRED"' in error.read()
    except (OSError, urllib.error.URLError):
        return False


class DaemonProcess:
    """One real daemon: ``start()`` launches it and waits for /ping; ``stop()`` ends it.

    ``build_argv(ports)`` returns the command line for the given ports (chosen once, on the first
    start, so a restart comes back on the same addresses). The daemon's output goes to a log file
    whose tail is shown when it fails to come up.
    """

    def __init__(
        self,
        name: str,
        port_names: tuple[str, ...],
        build_argv: Callable[[dict[str, int], str], list[str]],
        startup_timeout: float = 15.0,
    ) -> None:
        self.name = name
        self.ports = {port_name: 0 for port_name in port_names}
        self._build_argv = build_argv
        self._startup_timeout = startup_timeout
        self._workdir = tempfile.mkdtemp(prefix=f"nsqcli-{name}-")
        self._log_path = os.path.join(self._workdir, "daemon.log")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def data_path(self) -> str:
        return self._workdir

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> dict[str, int]:
        if self.running:
            return self.ports
        if all(self.ports.values()):  # a restart: the same ports, whatever happens
            return self._launch()
        for attempt in range(PORT_ATTEMPTS):
            self.ports = {port_name: free_port() for port_name in self.ports}
            try:
                return self._launch()
            except PortTaken:
                # another process took a port between free_port() and the daemon's bind
                if attempt == PORT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _launch(self) -> dict[str, int]:
        argv = self._build_argv(self.ports, self._workdir)
        log_start = os.path.getsize(self._log_path) if os.path.exists(self._log_path) else 0
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = PortTaken if b"address already in use" in self._log_since(log_start) \
                    else RuntimeError
                raise error(f"{self.name} exited with {self._process.returncode}:\n"
                            f"{self.log_tail()}")
            if http_ping(LOOPBACK, self.ports["http"], timeout=0.5):
                return self.ports
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer /ping within {self._startup_timeout} s:\n"
                           f"{self.log_tail()}")

    def _log_since(self, offset: int) -> bytes:
        try:
            with open(self._log_path, "rb") as log:
                log.seek(offset)
                return log.read()
        except OSError:
            return b""

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self._log_path, "rb") as log:
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)


def nsqd_process(binary: str, options: Mapping[str, Any]) -> DaemonProcess:
    extra = nsqd_flags(options)  # raises UnsupportedOption before anything starts
    configured_data_path = os.fspath(options.get("data_path") or "")

    # nsqd listens for HTTPS only with a TLS certificate (else it ignores --https-address)
    port_names = ("tcp", "http", "https") if options.get("tls_cert") else ("tcp", "http")

    def argv(ports: dict[str, int], workdir: str) -> list[str]:
        data_path = configured_data_path or workdir
        return [
            binary,
            *(f"--{name}-address={LOOPBACK}:{port}" for name, port in ports.items()),
            f"--broadcast-address={LOOPBACK}",
            f"--data-path={data_path}",
            *extra,
        ]

    return DaemonProcess("nsqd", port_names, argv)


def lookupd_process(binary: str, options: Mapping[str, Any]) -> DaemonProcess:
    extra = lookupd_flags(options)

    def argv(ports: dict[str, int], data_path: str) -> list[str]:
        return [
            binary,
            f"--tcp-address={LOOPBACK}:{ports['tcp']}",
            f"--http-address={LOOPBACK}:{ports['http']}",
            f"--broadcast-address={LOOPBACK}",
            *extra,
        ]

    return DaemonProcess("nsqlookupd", ("tcp", "http"), argv)
