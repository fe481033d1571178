"""``nsqcli dev-server``: a real subprocess on free ports, signals, flags, the loopback guard."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from nsqcli.broker.daemons import direct_opener
from nsqcli.dev_server import build_config, dev_server, is_loopback_host

FREE_PORTS = ["--tcp-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0",
              "--lookupd-tcp-address", "127.0.0.1:0", "--lookupd-http-address", "127.0.0.1:0"]


class DevServer:
    """``python -m nsqcli.dev_server`` as a child process; reads where it listens from stderr."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nsqcli.dev_server", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.banner = ""
        deadline = time.monotonic() + 30
        while "Press Ctrl-C" not in self.banner:
            line = self.process.stderr.readline()
            if not line or time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"dev-server did not start: {self.banner}"
                                     f"{self.process.stderr.read()}")
            self.banner += line
        self.addresses = dict(re.findall(r"(nsqd TCP|nsqd HTTP|nsqlookupd TCP|nsqlookupd HTTP)"
                                         r"\s+(?:http://)?(\S+)", self.banner))

    def get(self, which: str, path: str) -> tuple[int, bytes]:
        try:
            with direct_opener.open(f"http://{self.addresses[which]}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def post(self, which: str, path: str, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://{self.addresses[which]}{path}", data=body,
                                         method="POST")
        try:
            with direct_opener.open(request, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def stop(self, signum: int) -> tuple[int, str]:
        self.process.send_signal(signum)
        try:
            _, err = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return self.process.returncode, err


@pytest.fixture
def running():
    servers: list[DevServer] = []

    def start(*args: str) -> DevServer:
        server = DevServer(*args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def _wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not (result := predicate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return result


def test_serves_nsqd_registered_with_lookupd_and_stops_on_sigint(running):
    server = running(*FREE_PORTS)
    assert set(server.addresses) == {"nsqd TCP", "nsqd HTTP", "nsqlookupd TCP", "nsqlookupd HTTP"}
    assert all(a.startswith("127.0.0.1:") and not a.endswith(":0")
               for a in server.addresses.values())
    assert server.get("nsqd HTTP", "/ping") == (200, b"OK")
    assert server.get("nsqlookupd HTTP", "/ping") == (200, b"OK")
    nsqd_tcp_port = int(server.addresses["nsqd TCP"].rsplit(":", 1)[1])

    def registered() -> bool:
        nodes = json.loads(server.get("nsqlookupd HTTP", "/nodes")[1])["producers"]
        return [n["tcp_port"] for n in nodes] == [nsqd_tcp_port]

    assert _wait_for(registered)
    assert server.post("nsqd HTTP", "/pub?topic=dev", b"hello") == (200, b"OK")
    assert _wait_for(lambda: server.get("nsqlookupd HTTP", "/lookup?topic=dev")[0] == 200)
    status, err = server.stop(signal.SIGINT)
    assert status == 130, err  # the exit-status table: interrupted
    assert "Traceback" not in err


def test_sigterm_stops_cleanly_and_limits_are_applied(running):
    server = running("--tcp-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0",
                     "--no-lookupd", "--max-msg-size", "10", "--msg-timeout", "1500ms")
    assert "nsqlookupd" not in server.addresses
    assert server.post("nsqd HTTP", "/pub?topic=t", b"x" * 10)[0] == 200
    status, body = server.post("nsqd HTTP", "/pub?topic=t", b"x" * 11)
    assert (status, json.loads(body)) == (413, {"message": "MSG_TOO_BIG"})
    assert server.stop(signal.SIGTERM)[0] == 130


def test_tls_flags_reach_nsqd(running, tmp_path):
    import socket
    import struct

    trustme = pytest.importorskip("trustme")
    cert = trustme.CA().issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    server = running("--tcp-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0",
                     "--no-lookupd", "--tls-cert", str(cert_file), "--tls-key", str(key_file),
                     "--tls-required")
    assert "TLS: required" in server.banner
    host, port = server.addresses["nsqd TCP"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        body = b'{"feature_negotiation": true, "tls_v1": true}'
        sock.sendall(b"  V2IDENTIFY\n" + struct.pack(">l", len(body)) + body)
        size, frame_type = struct.unpack(">ll", sock.recv(8))
        reply = b""
        while len(reply) < size - 4:
            reply += sock.recv(size - 4 - len(reply))
    assert frame_type == 0 and json.loads(reply)["tls_v1"] is True
    assert server.stop(signal.SIGINT)[0] == 130


def test_refuses_non_loopback_without_allow_remote():
    result = CliRunner().invoke(dev_server, ["--http-address", "0.0.0.0:4151"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "refusing to listen on 0.0.0.0:4151 (--http-address)" in lines[0]
    assert "--allow-remote" in lines[0]


@pytest.mark.parametrize("args, message", [
    (["--tcp-address", "nonsense"], "--tcp-address: "),
    (["--tls-required"], "--tls-required needs --tls-cert and --tls-key"),
    (["--max-rdy-count", "0"], "0 is not in the range"),
    (["--msg-timeout", "soon"], "invalid duration"),
])
def test_bad_flags_exit_2(args, message):
    result = CliRunner().invoke(dev_server, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_config_from_flags():
    params = {"tcp_address": "127.0.0.1:1", "http_address": "127.0.0.1:2",
              "lookupd_tcp_address": "0.0.0.0:3", "lookupd_http_address": "[::1]:4",
              "broadcast_address": "127.0.0.1", "max_msg_size": 10, "msg_timeout": 1.5,
              "snappy": False, "tls_required": None, "auth_http_address": ("127.0.0.1:9",),
              "tombstone_lifetime": 2.0}
    config = build_config(params)
    assert config.nsqd_options == {"max_msg_size": 10, "msg_timeout_ms": 1500, "snappy": False,
                                   "auth_http_addresses": ["127.0.0.1:9"]}
    assert config.lookupd_options == {"tombstone_lifetime_ms": 2000}
    assert config.non_loopback() == [("--lookupd-tcp-address", "0.0.0.0:3")]
    assert build_config({**params, "no_lookupd": True}).non_loopback() == []


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.0.0.1", False),
    ("example.com", False), ("", False),
])
def test_is_loopback_host(host, loopback):
    assert is_loopback_host(host) is loopback
