"""The broker a benchmark runs against: an external nsqd, a real nsqd binary the harness
starts, the embedded nsqd or the lean peer.

The embedded nsqd and the peer run as their own processes (so the measured client has a core to
itself on a 2-core machine); both print one JSON line with their ports when they are listening.
The real nsqd is started like the test fixtures start it (free ports, a temporary --data-path).
Every broker is driven through nsqd's HTTP API, which the peer imitates for the calls used here.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from struct import Struct
from typing import Any

_INT32 = Struct(">l")
BROKER_KINDS = ("embedded", "peer", "real")
REPO = Path(__file__).resolve().parent.parent


class BrokerUnavailable(RuntimeError):
    """The broker could not be started (e.g. the embedded nsqd is not written yet)."""


@dataclass
class Broker:
    kind: str  # "external", "real", "embedded" or "peer"
    tcp_address: str
    http_address: str
    process: subprocess.Popen | None = field(default=None, repr=False)
    daemon: Any = field(default=None, repr=False)  # the real nsqd (nsqcli.broker.daemons)
    version: str = ""  # the real nsqd's, e.g. "v1.3.0"

    @property
    def label(self) -> str:
        return {"external": f"nsqd {self.tcp_address}", "real": f"real nsqd {self.version}",
                "embedded": "embedded nsqd", "peer": "bench peer"}[self.kind]

    @property
    def is_nsqd(self) -> bool:
        """A real nsqd (started here or external): where Go's apps are measured."""
        return self.kind in ("external", "real")

    # -- HTTP API ------------------------------------------------------------------------
    def http(self, method: str, path: str, **params: str) -> bytes:
        query = urllib.parse.urlencode(params)
        url = f"http://{self.http_address}{path}" + (f"?{query}" if query else "")
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def stats(self, topic: str) -> dict:
        return json.loads(self.http("GET", "/stats", format="json", topic=topic,
                                    include_clients="false"))

    def topic_stats(self, topic: str) -> dict | None:
        for entry in self.stats(topic).get("topics", []):
            if entry.get("topic_name") == topic:
                return entry
        return None

    def channel_stats(self, topic: str, channel: str) -> dict | None:
        entry = self.topic_stats(topic)
        for chan in (entry or {}).get("channels", []):
            if chan.get("channel_name") == channel:
                return chan
        return None

    def create_topic(self, topic: str, channel: str | None = None) -> None:
        self.http("POST", "/topic/create", topic=topic)
        if channel:
            self.http("POST", "/channel/create", topic=topic, channel=channel)

    def delete_topic(self, topic: str) -> None:
        try:
            self.http("POST", "/topic/delete", topic=topic)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise

    # -- filling a topic -----------------------------------------------------------------
    def prefill(self, topic: str, bodies, batch: int = 2000, in_flight: int = 8) -> int:
        """Publish ``bodies`` (an iterable of bytes) with pipelined MPUBs on a raw socket and
        check that every batch was acknowledged; returns the number of messages published."""
        host, port = self.tcp_address.rsplit(":", 1)
        published = 0
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(b"  V2")
            reader = _FrameReader(sock)
            outstanding = 0
            chunk: list[bytes] = []

            def send(chunk: list[bytes]) -> None:
                payload = b"".join(_INT32.pack(len(b)) + b for b in chunk)
                payload = _INT32.pack(len(chunk)) + payload
                sock.sendall(b"MPUB %s\n" % topic.encode() + _INT32.pack(len(payload)) + payload)

            for body in bodies:
                chunk.append(body)
                if len(chunk) == batch:
                    send(chunk)
                    published += len(chunk)
                    chunk = []
                    outstanding += 1
                    while outstanding >= in_flight:
                        reader.expect_ok()
                        outstanding -= 1
            if chunk:
                send(chunk)
                published += len(chunk)
                outstanding += 1
            while outstanding:
                reader.expect_ok()
                outstanding -= 1
        return published

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.cleanup()  # stops it and removes its --data-path
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _FrameReader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("broker closed the connection during prefill")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def expect_ok(self) -> None:
        while True:
            (size,) = _INT32.unpack(self._read(4))
            frame = self._read(size)
            frame_type, data = int.from_bytes(frame[:4], "big"), frame[4:]
            if frame_type == 0 and data == b"_heartbeat_":
                self.sock.sendall(b"NOP\n")
                continue
            if frame_type != 0 or data != b"OK":
                raise RuntimeError(f"prefill: broker answered {data!r}")
            return


def _spawn(argv: list[str], what: str) -> tuple[subprocess.Popen, dict]:
    # the broker's diagnostics go to a temporary file: a pipe nobody reads could fill up
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log,
                               cwd=REPO)
    line = process.stdout.readline()
    try:
        ports = json.loads(line)
    except ValueError:
        process.kill()
        process.wait(timeout=10)
        log.seek(0)
        lines = log.read().decode(errors="replace").strip().splitlines()
        raise BrokerUnavailable(f"{what} did not start: {(lines or ['no output'])[-1]}") from None
    finally:
        log.close()
    process.stdout.close()
    return process, ports


def find_nsq_bin(given: str | None = None) -> Path | None:
    """The directory of NSQ's binaries (nsqd and Go's apps): ``given`` (``--nsq-bin``), else
    that of NSQCLI_TEST_NSQD, else ../shared/nsq/bin next to the repository; None if none has
    an nsqd."""
    if given:
        return Path(given)
    test_nsqd = os.environ.get("NSQCLI_TEST_NSQD")
    for candidate in ([Path(test_nsqd).parent] if test_nsqd else []) + [
            REPO.parent / "shared" / "nsq" / "bin"]:
        if os.access(candidate / "nsqd", os.X_OK):
            return candidate
    return None


def _start_real(nsq_bin: Path | None, options: dict[str, Any]) -> Broker:
    from nsqcli.broker.daemons import UnsupportedOption, nsqd_process

    nsqd = nsq_bin / "nsqd" if nsq_bin else None
    if nsqd is None or not os.access(nsqd, os.X_OK):
        where = f"no nsqd in {nsq_bin}" if nsq_bin else (
            "no --nsq-bin, NSQCLI_TEST_NSQD or ../shared/nsq/bin/nsqd")
        raise BrokerUnavailable(where)
    version = subprocess.run([str(nsqd), "--version"], capture_output=True, text=True,
                             timeout=30).stdout.split()
    try:
        daemon = nsqd_process(str(nsqd), options)
    except UnsupportedOption as exc:
        raise BrokerUnavailable(str(exc)) from None
    try:
        ports = daemon.start()
    except RuntimeError as exc:
        daemon.cleanup()
        raise BrokerUnavailable(str(exc).splitlines()[0]) from None
    return Broker("real", f"127.0.0.1:{ports['tcp']}", f"127.0.0.1:{ports['http']}",
                  daemon=daemon, version=version[1] if len(version) > 1 else "")


def start_broker(kind: str, nsq_bin: Path | None = None,
                 nsqd_options: dict[str, Any] | None = None) -> Broker:
    """Start the embedded nsqd or the peer on free ports as a child process, or the real nsqd
    of ``nsq_bin`` (with ``nsqd_options``: the fixtures' option names, e.g. mem_queue_size)."""
    if kind not in BROKER_KINDS:
        raise ValueError(f"unknown broker {kind!r}: choose from {', '.join(BROKER_KINDS)}")
    if kind == "real":
        return _start_real(nsq_bin, nsqd_options or {})
    module = "bench.peer" if kind == "peer" else "bench.embedded"
    process, ports = _spawn([sys.executable, "-m", module], kind)
    return Broker(kind, f"127.0.0.1:{ports['tcp_port']}", f"127.0.0.1:{ports['http_port']}",
                  process)


def external_broker(tcp_address: str, http_address: str) -> Broker:
    return Broker("external", tcp_address, http_address)
