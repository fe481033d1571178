"""The confirmation of ``nsqcli topic delete`` on a real terminal (a pseudo-terminal), in a
subprocess: answered y it deletes, and Ctrl-C (SIGINT) at the question exits 130 at once with
nothing deleted."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time

import pytest
from polling import tool

PROMPT = b"Proceed? [y/N] "


class Terminal:
    """``nsqcli`` with stdin, stdout and stderr on one pseudo-terminal."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items()
               if k not in ("NSQD_HTTP_ADDRESS", "NSQLOOKUPD_HTTP_ADDRESS")}
        self.process = subprocess.Popen([tool("nsqcli"), *args], stdin=slave, stdout=slave,
                                        stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.output = b""

    def read_until(self, wanted: bytes, timeout: float = 30.0) -> bytes:
        deadline = time.monotonic() + timeout
        while wanted not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {wanted!r} in {self.output!r}"
            if select.select([self.master], [], [], remaining)[0]:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the process closed the terminal
                    chunk = b""
                if not chunk:
                    break
                self.output += chunk
        return self.output

    def finish(self) -> int:
        """Wait for the exit; what it printed until then is in ``output``."""
        status = self.process.wait(timeout=30)
        while select.select([self.master], [], [], 1.0)[0]:  # the rest, up to EOF (EIO)
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.output += chunk
        os.close(self.master)
        return status


@pytest.fixture
def doomed(nsqd):
    nsqd.create_topic("doomed")
    return nsqd


def test_yes_on_a_terminal_deletes(doomed):
    terminal = Terminal("topic", "delete", "doomed", "--nsqd-http-address", doomed.http_address)
    assert f"delete topic doomed on nsqd {doomed.http_address}".encode() in \
        terminal.read_until(PROMPT)
    os.write(terminal.master, b"y\n")
    assert terminal.finish() == 0, terminal.output
    assert f"nsqd {doomed.http_address}: deleted topic doomed".encode() in terminal.output
    assert doomed.topic_stats("doomed") is None


def test_ctrl_c_at_the_question_exits_130_and_deletes_nothing(doomed):
    terminal = Terminal("topic", "delete", "doomed", "--nsqd-http-address", doomed.http_address)
    terminal.read_until(PROMPT)
    terminal.process.send_signal(signal.SIGINT)
    assert terminal.finish() == 130, terminal.output
    assert b"Traceback" not in terminal.output
    assert doomed.topic_stats("doomed") is not None
