"""nsqlookupd down, slow, answering HTTP errors or garbage: the Reader logs each state change
once, keeps the nsqds it has, never crashes; one lookupd down among several does not hold up
discovery."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time

from nsqcli.lib.reader import Reader

POLL = 0.05


class FakeLookupd:
    """An nsqlookupd /lookup endpoint whose behaviour the test switches: ``ok`` (lists the
    producers), ``down`` (port closed), ``slow`` (answers after 10 s), ``error`` (HTTP 500),
    ``garbage`` (200 with a body that is not JSON). Runs on the test's event loop."""

    def __init__(self, producers: list[tuple[str, int]], state: str = "ok") -> None:
        self.producers = producers
        self.state = state
        self.port = 0
        self.requests: list[str] = []  # the state each request met
        self._server: asyncio.AbstractServer | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> "FakeLookupd":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def set_state(self, state: str) -> None:
        if state == "down" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        elif state != "down" and self._server is None:
            await self.start()
        self.state = state

    async def stop(self) -> None:
        await self.set_state("down")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            state = self.state
            self.requests.append(state)
            if state == "slow":
                await asyncio.sleep(10)
            if state == "error":
                status, body = "500 Internal Server Error", b'{"message":"INTERNAL_ERROR"}'
            elif state == "garbage":
                status, body = "200 OK", b"<html>not json at all"
            else:
                producers = [{"broadcast_address": h, "tcp_port": p, "hostname": "h",
                              "http_port": 1, "version": "1.3.0"} for h, p in self.producers]
                status = "200 OK"
                body = json.dumps({"channels": [], "producers": producers}).encode()
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                         + body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_lookupd_faults_are_logged_once_per_state_change_and_producers_kept(nsqd, caplog):
    caplog.set_level(logging.DEBUG, logger="nsqcli.lib")
    nsqd.create_topic("lk")
    nsqd.create_channel("lk", "c")
    received: list[bytes] = []
    phases = ["down", "ok", "slow", "ok", "error", "ok", "garbage", "ok", "error", "garbage", "ok"]
    first_log = 0  # the records from the first phase on

    async def main() -> tuple[FakeLookupd, list[int]]:
        nonlocal first_log
        lookupd = await FakeLookupd([(nsqd.host, nsqd.tcp_port)]).start()
        reader = Reader("lk", "c", lambda m: received.append(m.body) or True,
                        lookupd_http_addresses=[lookupd.address], lookupd_poll_interval=POLL,
                        lookupd_poll_jitter=0, lookupd_request_timeout=0.2,
                        lookupd_connect_timeout=0.2)
        loop = asyncio.get_running_loop()
        conn_ids = []
        async with reader:
            while not reader.conns:
                await asyncio.sleep(0.01)
            # a first query slower than the 0.2 s timeout (a loaded machine) is a failing spell
            # of its own, over (logged as answering again) once the reader is connected
            first_log = len(caplog.records)
            first = next(iter(reader.conns.values()))
            def polls() -> int:  # requests the fake saw, or failed attempts while it is down
                if lookupd.state != "down":
                    return len(lookupd.requests)
                return sum("still failing" in r.getMessage() or "query failed" in r.getMessage()
                           for r in caplog.records)

            for n, state in enumerate(phases):
                await lookupd.set_state(state)
                before = len(lookupd.requests) if state != "down" else polls()
                deadline = time.monotonic() + 10
                while polls() < before + 3 and time.monotonic() < deadline:  # several polls
                    await asyncio.sleep(POLL / 2)
                assert polls() >= before + 3, (state, lookupd.requests)
                await loop.run_in_executor(None, nsqd.pub, "lk", b"m%d" % n)
                conn_ids.append(id(next(iter(reader.conns.values()), None)))
                assert next(iter(reader.conns.values()), None) is first, state
            deadline = time.monotonic() + 5
            while len(received) < len(phases) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        await lookupd.stop()
        return lookupd, conn_ids

    lookupd, conn_ids = asyncio.run(asyncio.wait_for(main(), 30))
    assert sorted(received) == sorted(b"m%d" % n for n in range(len(phases)))
    records = caplog.records[first_log:]
    warnings = [r for r in records if "query failed" in r.getMessage()]
    recoveries = [r for r in records if "answering again" in r.getMessage()]
    failing_spells = 5  # down, slow, error, garbage, error+garbage
    assert len(warnings) == failing_spells, [r.getMessage() for r in warnings]
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert len(recoveries) == failing_spells
    texts = " | ".join(r.getMessage() for r in warnings)
    assert "Connection refused" in texts or "refused" in texts.lower()
    assert "HTTP 500" in texts and "not JSON" in texts and "Timeout" in texts, texts
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "no longer listed" not in caplog.text  # nothing was retired


def test_one_lookupd_down_or_hanging_does_not_hold_up_discovery(nsqd):
    nsqd.create_topic("several")
    nsqd.pub("several", b"found")
    received: list[bytes] = []

    async def main() -> float:
        hanging = await FakeLookupd([], state="slow").start()
        good = await FakeLookupd([(nsqd.host, nsqd.tcp_port)]).start()
        addresses = [f"127.0.0.1:{_closed_port()}", hanging.address, good.address]
        started = time.monotonic()
        reader = Reader("several", "c", lambda m: received.append(m.body) or True,
                        lookupd_http_addresses=addresses, lookupd_request_timeout=5,
                        lookupd_connect_timeout=5)
        async with reader:
            while not received and time.monotonic() - started < 10:
                await asyncio.sleep(0.01)
            elapsed = time.monotonic() - started
        await hanging.stop()
        await good.stop()
        return elapsed

    elapsed = asyncio.run(asyncio.wait_for(main(), 30))
    assert received == [b"found"]
    assert elapsed < 1.5, f"discovery waited {elapsed:.2f}s for the failing lookupds"


class _GarbageLookupd:
    """A threaded HTTP server answering every GET with 200 and a body that is not JSON."""

    def __init__(self) -> None:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                body = b"<html>surprise</html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_tools_given_only_a_broken_lookupd_fail_with_one_line(tmp_path):
    import subprocess

    from fault_helpers import tool, tool_env

    garbage = _GarbageLookupd()
    down = f"127.0.0.1:{_closed_port()}"
    (tmp_path / "in.log").write_bytes(b"r\n")
    try:
        for lookupd, expected in ((down, b"connection refused"), (garbage.address, b"not json")):
            for name, extra in (("nsq-pub", ["--topic", "t", "-m", "x"]),
                                ("nsq-replay", [str(tmp_path / "in.log"), "--topic", "t"]),
                                ("nsq-to-file", ["--output-dir", str(tmp_path)])):
                result = subprocess.run([tool(name), *extra, "--lookupd-http-address", lookupd],
                                        capture_output=True, timeout=20, env=tool_env())
                assert result.returncode == 1, (name, result.stderr)
                assert len(result.stderr.splitlines()) == 1, (name, result.stderr)
                assert expected in result.stderr.lower(), (name, result.stderr)
                assert lookupd.encode() in result.stderr and b"nsqd running" not in result.stderr
    finally:
        garbage.close()


def test_nsq_tail_with_a_broken_lookupd_warns_once_and_keeps_polling():
    import signal

    from fault_helpers import spawn, stop_with, tool

    garbage = _GarbageLookupd()
    try:
        process = spawn([tool("nsq-tail"), "--topic", "t", "--lookupd-http-address",
                         garbage.address, "--consumer-opt", "lookupd_poll_interval=100ms"])
        time.sleep(1.0)  # about ten polls
        assert process.poll() is None
        _, stderr = stop_with(process, signal.SIGINT)
    finally:
        garbage.close()
    assert process.returncode == 130, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and b"query failed" in lines[0] and b"not JSON" in lines[0], stderr
