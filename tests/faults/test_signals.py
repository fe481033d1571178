"""SIGINT/SIGTERM during heavy traffic in every tool (as subprocesses): a graceful drain within a
bound, nothing lost on a durable channel, exit 130; a second signal exits at once (130)."""

from __future__ import annotations

import gzip
import json
import re
import signal
import subprocess
import threading
import time

import pytest

from fault_helpers import (
    CONSUMER_STOP_MSG_TIMEOUT_MS, ThreadedFake, consume_channel, kill_quietly, lines_of,
    queue_messages, spawn, stop_with, tool, wait_for,
)
from nsqcli.cli.launch import SCRIPTS

DRAIN_BOUND = 5.0  # seconds from the signal to the exit


def _assert_clean(process: subprocess.Popen, elapsed: float, stderr: bytes) -> None:
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr, stderr
    assert elapsed < DRAIN_BOUND, f"drain took {elapsed:.2f}s"


def test_nsq_tail_sigint_drains_and_loses_nothing(nsqd_factory, tmp_path):
    nsqd = nsqd_factory(msg_timeout_ms=CONSUMER_STOP_MSG_TIMEOUT_MS)
    everything = queue_messages(nsqd, "tl", 30_000)
    out = tmp_path / "out"
    with open(out, "wb") as handle:
        process = spawn([tool("nsq-tail"), "--topic", "tl", "--channel", "c", "--max-in-flight",
                         "500", "--nsqd-tcp-address", nsqd.tcp_address], stdout=handle)
        try:
            assert wait_for(lambda: len(lines_of(out)) > 2000)
            elapsed, stderr = stop_with(process, signal.SIGINT)
        finally:
            kill_quietly(process)
    _assert_clean(process, elapsed, stderr)
    printed = lines_of(out)
    assert len(printed) == len(set(printed)) < len(everything)
    rest = consume_channel(nsqd, "tl")
    assert len(printed) + len(rest) == len(everything)  # each message exactly once
    assert set(printed) | set(rest) == everything


def test_nsq_pub_sigterm_publishes_everything_it_read(nsqd):
    nsqd.create_topic("pb")
    nsqd.create_channel("pb", "c")
    process = spawn([tool("nsq-pub"), "-v", "--topic", "pb", "--nsqd-tcp-address",
                     nsqd.tcp_address], stdin=subprocess.PIPE)
    stop_feeding = threading.Event()

    def feed() -> None:  # an endless input: the signal, not EOF, ends the run
        n = 0
        try:
            while not stop_feeding.is_set():
                process.stdin.write(b"".join(b"pb-%d\n" % i for i in range(n, n + 5000)))
                n += 5000
        except (BrokenPipeError, ValueError, OSError):
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        assert wait_for(lambda: nsqd.channel_stats("pb", "c")["depth"] > 50_000, timeout=20)
        elapsed, stderr = stop_with(process, signal.SIGTERM)
    finally:
        stop_feeding.set()
        kill_quietly(process)
        feeder.join(5)
    _assert_clean(process, elapsed, stderr)
    match = re.search(rb"(\d+) of (\d+) records acknowledged", stderr)
    assert match, stderr
    acked, submitted = int(match.group(1)), int(match.group(2))
    assert acked == submitted > 50_000  # every record it read was published before exiting
    assert b"not acknowledged" not in stderr
    stored = consume_channel(nsqd, "pb")
    assert len(stored) == acked
    assert set(stored) == {b"pb-%d" % i for i in range(acked)}  # the first records, in input order


def test_nsq_to_file_sigterm_syncs_finishes_and_loses_nothing(nsqd_factory, tmp_path):
    nsqd = nsqd_factory(msg_timeout_ms=CONSUMER_STOP_MSG_TIMEOUT_MS)
    everything = queue_messages(nsqd, "tf", 30_000)
    out_dir = tmp_path / "out"
    process = spawn([tool("nsq-to-file"), "--topic", "tf", "--channel", "c", "--output-dir",
                     str(out_dir), "--max-in-flight", "500", "--nsqd-tcp-address",
                     nsqd.tcp_address])

    def archived() -> list[bytes]:
        return [line for path in sorted(out_dir.glob("*")) for line in lines_of(path)]

    try:
        assert wait_for(lambda: nsqd.channel_stats("tf", "c")["depth"] < 28_000)
        elapsed, stderr = stop_with(process, signal.SIGTERM)
    finally:
        kill_quietly(process)
    _assert_clean(process, elapsed, stderr)
    written = archived()
    assert len(written) == len(set(written)) < len(everything)
    rest = consume_channel(nsqd, "tf")
    assert len(written) + len(rest) == len(everything)  # what is on disk was FINed, the rest kept
    assert set(written) | set(rest) == everything


def test_nsq_replay_sigterm_checkpoints_exactly_what_nsqd_has(nsqd, tmp_path):
    total = 200_000
    source = tmp_path / "rp.h-000000.2024-01-01_00.log.gz"
    source.write_bytes(gzip.compress(b"".join(b"rp-%d\n" % i for i in range(total))))
    checkpoint = tmp_path / "ck.json"
    nsqd.create_topic("rp")
    nsqd.create_channel("rp", "c")
    process = spawn([tool("nsq-replay"), str(source), "--checkpoint", str(checkpoint),
                     "--rate", "50000", "--nsqd-tcp-address", nsqd.tcp_address])
    try:
        assert wait_for(lambda: nsqd.channel_stats("rp", "c")["depth"] > 10_000)
        elapsed, stderr = stop_with(process, signal.SIGTERM)
    finally:
        kill_quietly(process)
    _assert_clean(process, elapsed, stderr)
    (entry,) = json.loads(checkpoint.read_text())["files"].values()
    [[start, sent]] = entry["acked"]
    assert start == 0 and 10_000 <= sent < total and entry["complete"] is False
    stored = consume_channel(nsqd, "rp")
    assert sorted(stored) == sorted(b"rp-%d" % i for i in range(sent))  # exactly the checkpoint


# ---- a second signal during a drain that cannot finish: exit at once --------------------------

NEVER = lambda command: None  # noqa: E731 - a fake nsqd reply that never comes

HANGING_DRAINS = {
    # consumers whose CLS is never answered wait up to close_timeout (30 s)
    "nsq-tail": ({"CLS": NEVER}, "SUB", ["--topic", "t", "--channel", "c"], None),
    "nsq-to-file": ({"CLS": NEVER}, "SUB", ["--topic", "t", "--channel", "c", "--output-dir",
                                            "{tmp}"], None),
    # publishers whose MPUB is never answered wait up to --retry-timeout (30 s)
    "nsq-pub": ({"MPUB": NEVER, "PUB": NEVER}, "MPUB", ["--topic", "t"], b"x\n" * 20_000),
    "nsq-replay": ({"MPUB": NEVER, "PUB": NEVER}, "MPUB", ["{tmp}/in.log", "--topic", "t"], None),
    # a relay whose source never answers CLS (its destination: the same fake, another topic)
    "nsq-to-nsq": ({"CLS": NEVER}, "SUB", ["--topic", "t", "--channel", "c", "--destination-topic",
                                           "u", "--destination-nsqd-tcp-address", "{addr}"], None),
}


@pytest.mark.parametrize("name", sorted(HANGING_DRAINS))
def test_second_signal_exits_at_once(name, tmp_path):
    responses, started_by, args, stdin = HANGING_DRAINS[name]
    (tmp_path / "in.log").write_bytes(b"r\n" * 20_000)
    with ThreadedFake(responses=responses) as fake:
        args = [a.replace("{tmp}", str(tmp_path)).replace("{addr}", fake.address) for a in args]
        process = spawn([tool(name), "-v", *args, "--nsqd-tcp-address", fake.address],
                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        try:
            if stdin is not None:
                process.stdin.write(stdin)  # left open: the engine, not the quick path
                process.stdin.flush()
            assert wait_for(lambda: any(line.startswith(started_by)
                                        for line in fake.transcript())), fake.transcript()
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert process.poll() is None  # draining: waiting for nsqd's answer
            elapsed, stderr = stop_with(process, signal.SIGINT, timeout=10)
        finally:
            kill_quietly(process)
    assert process.returncode == 130, stderr
    assert elapsed < 1.0, elapsed
    assert b"SIGTERM: finishing what is in flight" in stderr
    assert b"SIGINT again: exiting at once" in stderr
    assert b"Traceback" not in stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_nsq_pub_quick_path_signal_then_no_answer_reports_the_records(signum):
    """A small -m publish (the quick path, before the event loop) to an nsqd that never
    answers: a signal lets it wait for the answer (bounded by the dial timeout), then it reports
    the record as not acknowledged (exit 3) instead of dying or printing 'Aborted!'."""
    with ThreadedFake(responses={"PUB": NEVER, "MPUB": NEVER}) as fake:
        process = spawn([tool("nsq-pub"), "--topic", "t", "-m", "one", "--producer-opt",
                         "dial_timeout=200ms", "--nsqd-tcp-address", fake.address],
                        stdin=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: any(line.startswith(("PUB", "MPUB"))
                                        for line in fake.transcript())), fake.transcript()
            elapsed, stderr = stop_with(process, signum, timeout=10)
        finally:
            kill_quietly(process)
    assert process.returncode == 3, stderr
    assert stderr == b"nsq-pub: error: 1 of 1 records were not acknowledged by nsqd\n"
    assert elapsed < 3.0  # the quick path's answer timeout is 5 x dial_timeout = 1 s


def test_nsq_pub_quick_path_second_signal_exits_at_once():
    with ThreadedFake(responses={"PUB": NEVER, "MPUB": NEVER}) as fake:
        process = spawn([tool("nsq-pub"), "--topic", "t", "-m", "one", "--nsqd-tcp-address",
                         fake.address], stdin=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: any(line.startswith(("PUB", "MPUB"))
                                        for line in fake.transcript())), fake.transcript()
            process.send_signal(signal.SIGINT)
            time.sleep(0.3)
            assert process.poll() is None  # waiting for nsqd's answer (5 s by default)
            elapsed, stderr = stop_with(process, signal.SIGTERM, timeout=10)
        finally:
            kill_quietly(process)
    assert process.returncode == 130, stderr
    assert elapsed < 1.0
    assert stderr == b"nsq-pub: error: SIGTERM again: exiting at once\n"


def test_nsq_pub_quick_path_signal_during_a_slow_answer_exits_130():
    """The answer comes after the signal: the record is acknowledged, the exit says stopped."""
    asked = threading.Event()

    def slow_ok(command):
        asked.set()
        time.sleep(0.6)  # blocks the fake's loop: the answer comes late
        return b"OK"

    with ThreadedFake(responses={"PUB": slow_ok, "MPUB": slow_ok}) as fake:
        process = spawn([tool("nsq-pub"), "--topic", "t", "-m", "one",
                         "--nsqd-tcp-address", fake.address], stdin=subprocess.DEVNULL)
        try:
            assert asked.wait(10)
            elapsed, stderr = stop_with(process, signal.SIGTERM, timeout=10)
        finally:
            kill_quietly(process)
    assert process.returncode == 130, stderr
    # after a signal the count is shown without -v (issue 13, item 9)
    assert stderr == b"nsq-pub: 1 of 1 records acknowledged\n"


def test_nsq_tail_blocked_on_a_stalled_stdout_pipe_still_exits_on_a_second_signal(nsqd):
    """stdout is a pipe nobody reads (``nsq-tail | less`` left paused): the tool is stuck in a
    write and its event loop cannot run, yet a second signal must exit at once (130)."""
    import os

    queue_messages(nsqd, "stall", 20_000)
    read_end, write_end = os.pipe()
    try:
        process = spawn([tool("nsq-tail"), "--topic", "stall", "--channel", "c",
                         "--nsqd-tcp-address", nsqd.tcp_address], stdout=write_end)
        os.close(write_end)
        write_end = -1
        try:
            # the pipe (64 KiB) fills up long before 20,000 lines of ~10 bytes are written
            assert wait_for(lambda: nsqd.channel_stats("stall", "c")["in_flight_count"] > 0)
            time.sleep(0.5)
            process.send_signal(signal.SIGINT)
            time.sleep(0.3)
            assert process.poll() is None  # cannot drain: the write never completes
            elapsed, stderr = stop_with(process, signal.SIGINT, timeout=10)
        finally:
            kill_quietly(process)
    finally:
        os.close(read_end)
        if write_end != -1:
            os.close(write_end)
    assert process.returncode == 130, stderr
    assert elapsed < 1.0
    assert b"SIGINT again: exiting at once" in stderr


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_nsq_replay_from_an_idle_stdin_pipe_replays_what_came_and_stops_on_sigterm(nsqd,
                                                                                  compress):
    """``producer | nsq-replay -`` with a producer that goes quiet: what came is published at
    once (not after 256 KiB), and a SIGTERM stops the replay at once instead of waiting for
    input that does not come."""
    import zlib

    nsqd.create_topic("idle")
    nsqd.create_channel("idle", "c")
    data = b"".join(b"idle-%d\n" % i for i in range(500))
    if compress:  # a gzip member flushed at a record boundary, as nsq-to-file syncs
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        data = packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH)
    process = spawn([tool("nsq-replay"), "-v", "-", "--topic", "idle", "--nsqd-tcp-address",
                     nsqd.tcp_address], stdin=subprocess.PIPE)
    try:
        process.stdin.write(data[:1])  # a first read of one byte must still detect gzip
        process.stdin.flush()
        time.sleep(0.1)
        process.stdin.write(data[1:])
        process.stdin.flush()  # and then nothing more, with the pipe left open
        assert wait_for(lambda: nsqd.channel_stats("idle", "c")["depth"] == 500)
        elapsed, stderr = stop_with(process, signal.SIGTERM, timeout=10)
    finally:
        kill_quietly(process)
    _assert_clean(process, elapsed, stderr)
    assert elapsed < 1.0
    assert b"500 of 500 records acknowledged" in stderr, stderr
    stored = consume_channel(nsqd, "idle", count=500)
    assert sorted(stored) == sorted(b"idle-%d" % i for i in range(500))


# ---- a Ctrl-C while a tool is still loading ---------------------------------------------------

# Runs a console script as its installed entry point does, with a SIGINT arriving while the tool
# imports click (before nsqcli.runner could install its handlers)
INTERRUPTED_WHILE_LOADING = """
import builtins, os, signal, sys
from importlib.metadata import entry_points

(script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == sys.argv[1]]
real_import = builtins.__import__

def importing(name, *args, **kwargs):
    if name == "click":
        builtins.__import__ = real_import
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)

builtins.__import__ = importing
sys.argv = sys.argv[1:]
sys.exit(script.load()())
"""


# every console script; 130 but for nsq-stat (0: stopping is how its live view ends)
@pytest.mark.parametrize("name, status", [(script, tool.stop_status)
                                          for script, tool in SCRIPTS.items()])
def test_ctrl_c_while_a_tool_loads_exits_quietly(name, status):
    import sys

    # SIGINT as in a terminal: a background job (``pytest &``) would pass it on ignored
    process = spawn([sys.executable, "-c", INTERRUPTED_WHILE_LOADING, name, "--help"],
                    stdout=subprocess.PIPE,
                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        stdout, stderr = process.communicate(timeout=20)
    finally:
        kill_quietly(process)
    assert (process.returncode, stderr, stdout) == (status, b"", b"")
