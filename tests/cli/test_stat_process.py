"""nsq-stat as a process that runs until Ctrl-C: rates that follow what happens on the nsqd, an
nsqd that stops and comes back, Ctrl-C during a poll, and the live table on a terminal."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from polling import tool, wait_for


class Running:
    """A running nsq-stat whose stdout lines are collected as they come."""

    def __init__(self, args: list[str]) -> None:
        env = {k: v for k, v in os.environ.items()
               if k not in ("NSQD_HTTP_ADDRESS", "NSQLOOKUPD_HTTP_ADDRESS")}
        self.process = subprocess.Popen([tool("nsq-stat"), *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.decode())

    def polls(self) -> list[dict]:
        return [json.loads(line) for line in list(self.lines)]

    def wait_for_poll(self, predicate, timeout: float = 30.0) -> dict:
        """The first poll (from now on) for which ``predicate`` is true."""
        start = len(self.lines)
        found: list[dict] = []

        def seen() -> bool:
            found[:] = [poll for poll in self.polls()[start:] if predicate(poll)]
            return bool(found)

        assert wait_for(seen, timeout), (self.lines[-3:], self.process.poll())
        return found[0]

    def interrupt(self, timeout: float = 15.0, signum: int = signal.SIGINT) -> tuple[int, str]:
        self.process.send_signal(signum)
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code, self.process.stderr.read().decode()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def running():
    started: list[Running] = []

    def start(args: list[str]) -> Running:
        started.append(Running(args))
        return started[-1]

    yield start
    for process in started:
        process.kill()


def channel_row(poll: dict, channel: str) -> dict | None:
    return next((row for row in poll["rows"] if row["channel"] == channel), None)


def test_rates_and_trend_follow_what_is_published_and_consumed(nsqd, running):
    nsqd.create_topic("stat_rates")
    nsqd.create_channel("stat_rates", "audit")
    stat = running(["--nsqd-http-address", nsqd.http_address, "--json", "--interval", "0.2",
                    "--topic", "stat_rates", "--channel", "audit"])
    stat.wait_for_poll(lambda poll: channel_row(poll, "audit") is not None)
    nsqd.mpub("stat_rates", [b"x"] * 15)
    full = stat.wait_for_poll(lambda poll: channel_row(poll, "audit")["depth"] == 15)
    # nothing consumed: rising (possibly over two polls, as nsqd moves messages on its own time)
    rows = [channel_row(poll, "audit") for poll in stat.polls()[1:full["poll"]]]
    assert sum(row["depth_change"] for row in rows) == 15
    assert max(row["rate_in"] for row in rows) > 0
    assert all(row["rate_out"] == 0 for row in rows)
    assert any(row["trend"] == "rising" for row in rows)
    consumed = subprocess.run([tool("nsq-tail"), "--topic", "stat_rates", "--channel", "audit",
                               "-n", "15", "--nsqd-tcp-address", nsqd.tcp_address],
                              capture_output=True, timeout=60)
    assert consumed.returncode == 0, consumed.stderr
    empty = stat.wait_for_poll(lambda poll: channel_row(poll, "audit")["depth"] == 0
                               and channel_row(poll, "audit")["in_flight"] == 0)
    rows = [channel_row(poll, "audit") for poll in stat.polls()[full["poll"]:empty["poll"]]]
    assert sum(row["depth_change"] for row in rows) == -15
    assert max(row["rate_out"] for row in rows) > 0  # finished
    assert all(row["rate_in"] == 0 for row in rows)
    assert any(row["trend"] == "falling" for row in rows)
    code, stderr = stat.interrupt()
    assert code == 0, stderr  # Ctrl-C is how a live view ends
    assert "Traceback" not in stderr


def test_an_nsqd_that_stops_is_shown_down_then_back(nsqd, running):
    nsqd.create_topic("stat_restart")
    stat = running(["--nsqd-http-address", nsqd.http_address, "--json", "--interval", "0.2"])
    stat.wait_for_poll(lambda poll: poll["rows"] and poll["nsqds"][0]["error"] is None)
    nsqd.stop()
    down = stat.wait_for_poll(lambda poll: poll["nsqds"][0]["error"] is not None)
    assert down["rows"] == [] and "connection refused" in down["nsqds"][0]["error"]
    nsqd.start()
    back = stat.wait_for_poll(lambda poll: poll["nsqds"][0]["error"] is None)
    assert [row["topic"] for row in back["rows"]] == ["stat_restart"]  # kept in its data path
    code, stderr = stat.interrupt(signum=signal.SIGTERM)
    assert code == 0  # SIGTERM too: stopping is how it ends
    assert stderr.splitlines() == [
        f"nsq-stat: warning: nsqd {nsqd.http_address} is down: connection refused (is nsqd "
        "running there?)",
        f"nsq-stat: nsqd {nsqd.http_address} answers again",
    ]


def test_ctrl_c_while_an_nsqd_keeps_a_poll_waiting_exits_0_at_once():
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        process = subprocess.Popen(
            [tool("nsq-stat"), "--nsqd-http-address", f"127.0.0.1:{silent.getsockname()[1]}",
             "--http-client-request-timeout", "5m"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        try:
            silent.settimeout(30)
            connection, _ = silent.accept()  # the poll is under way
            with connection:
                assert connection.recv(4096).startswith(b"GET /stats?")
                stopped_at = time.monotonic()
                process.send_signal(signal.SIGINT)
                out, err = process.communicate(timeout=30)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert time.monotonic() - stopped_at < 20  # not the 5 minutes of the request timeout
    assert out == b"" and b"Traceback" not in err


def test_the_script_and_python_m(run_tool):
    for command in ([tool("nsq-stat")], [sys.executable, "-m", "nsqcli.stat"]):
        result = run_tool([*command, "--version"])
        assert result.returncode == 0 and b"nsqcli" in result.stdout, result


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_on_a_terminal_a_live_table_fits_80_columns(nsqd):
    import fcntl
    import select
    import struct
    import termios

    nsqd.create_topic("stat_live_topic_with_a_rather_long_name")
    nsqd.create_channel("stat_live_topic_with_a_rather_long_name", "audit")
    nsqd.http_json("POST", "/channel/pause",
                   {"topic": "stat_live_topic_with_a_rather_long_name", "channel": "audit"})
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    process = subprocess.Popen([tool("nsq-stat"), "--nsqd-http-address", nsqd.http_address,
                                "--interval", "0.2"], stdin=slave, stdout=slave, stderr=slave,
                               env=env, start_new_session=True)
    os.close(slave)
    output = bytearray()

    def read_some(wait: float = 0.1) -> bool:
        if select.select([master], [], [], wait)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed: the process is gone
                return False
            output.extend(data)
            return bool(data)
        return True

    def redrawn_twice() -> bool:
        read_some()
        title = ANSI.sub("", output.decode("utf-8", "replace"))
        return title.count("1/1 nsqd up") >= 2  # the title, once per poll

    try:
        assert wait_for(redrawn_twice, 30, 0), bytes(output[-2000:])
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            read_some()
        while read_some(0.2) and len(output) < 10**6:
            pass
    finally:
        process.kill()
        process.wait()
        os.close(master)
    assert process.returncode == 0, bytes(output[-2000:])
    text = ANSI.sub("", output.decode("utf-8", "replace"))
    lines = [line for chunk in text.split("\n") for line in chunk.split("\r")]
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "1/1 nsqd up" in text and "audit" in text
    assert re.search(r"stat_\S*…\S*name ", text)  # the long name cut in the middle
    assert "Traceback" not in text


def test_a_closed_pipe_ends_it_quietly_with_0(nsqd):
    """``nsq-stat | head -1``: the reader has what it wanted."""
    nsqd.create_topic("stat_pipe")
    process = subprocess.Popen([tool("nsq-stat"), "--nsqd-http-address", nsqd.http_address,
                                "--interval", "0.1"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        assert process.stdout.readline().split()[:2] == [b"time", b"topic"]
        process.stdout.close()  # as head does once it printed its line
        assert process.wait(timeout=30) == 0
        assert process.stderr.read() == b""
    finally:
        process.kill()
        process.wait()
