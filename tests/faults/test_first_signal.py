"""The first SIGINT on a consumer holding unanswered messages says at once what it waits for and
for how long, and that a second one exits now -- in the tools and in ``nsq.run()`` (issue 13,
item 8). Before, the wait (up to 30 s) was silent."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading

from fault_helpers import kill_quietly, queue_messages, spawn, tool, wait_for


def stderr_lines(process: subprocess.Popen) -> "queue.Queue[bytes]":
    """Every line the process writes to stderr, as it comes; b"" once stderr closed."""
    lines: "queue.Queue[bytes]" = queue.Queue()

    def pump() -> None:
        for line in iter(process.stderr.readline, b""):
            lines.put(line)
        lines.put(b"")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def the_rest(lines: "queue.Queue[bytes]") -> bytes:
    rest = []
    while (line := next_line(lines, timeout=10)):
        rest.append(line)
    return b"".join(rest)


def next_line(lines: "queue.Queue[bytes]", timeout: float = 5.0) -> bytes:
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line on stderr within {timeout}s") from None


def blocked_writing_to_a_pipe(pid: int) -> bool:
    """The process's main thread sleeps in the kernel's pipe write (Linux)."""
    try:
        with open(f"/proc/{pid}/wchan") as wchan:
            return wchan.read().endswith("pipe_write")
    except OSError:
        return False


def test_nsq_tail_stuck_on_stdout_says_what_it_waits_for_at_the_first_signal(nsqd):
    queue_messages(nsqd, "stuck", 20_000)
    read_end, write_end = os.pipe()
    process = spawn([tool("nsq-tail"), "--topic", "stuck", "--channel", "c",
                     "--nsqd-tcp-address", nsqd.tcp_address], stdout=write_end)
    os.close(write_end)
    try:
        lines = stderr_lines(process)
        # its loop is stuck in a write: the messages of that batch cannot be answered
        assert wait_for(lambda: blocked_writing_to_a_pipe(process.pid))
        process.send_signal(signal.SIGINT)
        line = next_line(lines)
        assert re.fullmatch(rb"nsq-tail: SIGINT: waiting up to 30s for [1-9]\d* "
                            rb"unanswered message\(s\) to be answered; press Ctrl-C again to "
                            rb"exit at once\n", line), line
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        rest = the_rest(lines)
    finally:
        kill_quietly(process)
        os.close(read_end)
    assert process.returncode == 130
    assert rest == b"nsq-tail: error: SIGINT again: exiting at once\n"


READER = textwrap.dedent("""
    import sys
    import nsqcli.lib as nsq

    def handler(message):
        message.enable_async()  # and never answered
        print("got", message.body.decode(), flush=True)

    nsq.Reader("held", "c", handler, nsqd_tcp_addresses=[sys.argv[1]], max_in_flight=5)
    nsq.run()
    print("stopped", flush=True)
""")


def test_nsq_run_says_what_it_waits_for_at_the_first_signal(nsqd):
    queue_messages(nsqd, "held", 3)
    process = spawn([sys.executable, "-c", READER, nsqd.tcp_address], stdout=subprocess.PIPE)
    try:
        for _ in range(3):
            assert process.stdout.readline().startswith(b"got held-")
        lines = stderr_lines(process)
        process.send_signal(signal.SIGINT)
        line = next_line(lines)
        assert line == (b"SIGINT received: closing readers and writers, waiting up to 30s for 3 "
                        b"unanswered message(s) to be answered; press Ctrl-C again to stop now\n")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        out = process.stdout.read()
        rest = the_rest(lines)
    finally:
        kill_quietly(process)
    assert out == b"stopped\n"
    assert b"SIGINT again: stopping now" in rest
