"""The command-line tools, each run as users run them (console script, whole process timed),
and Go's apps that do the same jobs (to_nsq, nsq_tail, nsq_to_file, nsq_to_nsq), run the same
way with the same flags on the same broker."""

from __future__ import annotations

import shutil
import statistics

from typing import Callable

from ..brokers import Broker
from ..measure import ProcessRun, run_process
from . import (
    Context, Sample, Unavailable, VerificationFailed, check_exit, rate, timeout_for,
    verify_drained, verify_published,
)
from .data import bodies, count_lines, gzip_archive, lines_file, newest_mtime

CHANNEL = "bench"
ONE_MESSAGE_RUNS = 10
GO_TAIL_IN_FLIGHT = 200  # nsq_tail's default --max-in-flight


def _prefill(ctx: Context, topic: str, n: int, size: int) -> None:
    ctx.broker.create_topic(topic, CHANNEL)
    ctx.broker.prefill(topic, bodies(n, size))


def _publish_stdin(ctx: Context, n: int, size: int, argv: list[str], name: str) -> Sample:
    """stdin lines -> topic: msgs/s over the whole process (start to exit, all acknowledged)."""
    path = lines_file(ctx.workdir, n, size)
    topic = ctx.topic(name)
    try:
        with open(path, "rb") as stdin:
            run = run_process(argv + ["--topic", topic, "--nsqd-tcp-address",
                                      ctx.broker.tcp_address], stdin=stdin,
                              timeout=timeout_for(n))
        check_exit(run, name)
        verify_published(ctx.broker, topic, n)
    finally:
        ctx.broker.delete_topic(topic)
    return Sample(rate(n, run.wall), run.cpu, run.peak_rss_kib)


def nsq_pub(ctx: Context, n: int, size: int) -> Sample:
    return _publish_stdin(ctx, n, size, ctx.tool("nsq-pub", "--topic", "--nsqd-tcp-address"),
                          "nsq-pub")


def go_to_nsq(ctx: Context, n: int, size: int) -> Sample:
    """Go's to_nsq: one PUB per line, each acknowledged before the next (its only mode)."""
    return _publish_stdin(ctx, n, size, ctx.go_app("to_nsq"), "to_nsq")


def nsq_replay(ctx: Context, n: int, size: int) -> Sample:
    """gzip archive -> topic: msgs/s over the whole process."""
    argv = ctx.tool("nsq-replay", "--topic", "--nsqd-tcp-address")
    path = gzip_archive(ctx.workdir, n, size)
    topic = ctx.topic("nsq-replay")
    try:
        run = run_process(argv + ["--topic", topic, "--nsqd-tcp-address",
                                  ctx.broker.tcp_address, str(path)], timeout=timeout_for(n))
        check_exit(run, "nsq-replay")
        verify_published(ctx.broker, topic, n)
    finally:
        ctx.broker.delete_topic(topic)
    return Sample(rate(n, run.wall), run.cpu, run.peak_rss_kib)


def _tail(ctx: Context, n: int, size: int, argv: list[str], name: str,
          verify: Callable[[Broker, str, str, int], None]) -> Sample:
    """topic -> /dev/null with ``-n N``: msgs/s over the whole process."""
    topic = ctx.topic(name)
    try:
        _prefill(ctx, topic, n, size)
        run = run_process(argv + ["--topic", topic, "--channel", CHANNEL, "--nsqd-tcp-address",
                                  ctx.broker.tcp_address, "-n", str(n)], stdout_to="/dev/null",
                          timeout=timeout_for(n))
        check_exit(run, name)
        verify(ctx.broker, topic, CHANNEL, n)
    finally:
        ctx.broker.delete_topic(topic)
    return Sample(rate(n, run.wall), run.cpu, run.peak_rss_kib)


def nsq_tail(ctx: Context, n: int, size: int) -> Sample:
    """Every message FINed exactly once."""
    return _tail(ctx, n, size, ctx.tool("nsq-tail", "--topic", "--channel", "-n"), "nsq-tail",
                 verify_drained)


def go_nsq_tail(ctx: Context, n: int, size: int) -> Sample:
    """Go's nsq_tail -n exits inside the handler of the N-th message, so what is in flight then
    (at most its --max-in-flight, 200) is never FINed: it must have exited 0 (N handled) with
    every message delivered and none delivered twice."""
    return _tail(ctx, n, size, ctx.go_app("nsq_tail"), "nsq_tail", _verify_go_tail)


def _verify_go_tail(broker: Broker, topic: str, channel: str, n: int) -> None:
    chan = broker.channel_stats(topic, channel) or {}
    problems = [f"{key}={chan.get(key)} (want {want})" for key, want in
                (("message_count", n), ("depth", 0), ("requeue_count", 0), ("timeout_count", 0))
                if chan.get(key) != want]
    if chan.get("in_flight_count", 0) > GO_TAIL_IN_FLIGHT:
        problems.append(f"in_flight_count={chan.get('in_flight_count')} "
                        f"(want <= {GO_TAIL_IN_FLIGHT})")
    if problems:
        raise VerificationFailed(f"{topic}/{channel}: " + ", ".join(problems))


def nsq_to_file(ctx: Context, n: int, size: int, sync_interval: str = "1s",
                extra: tuple[str, ...] = ()) -> Sample:
    """topic -> file with ``--sync-interval 1s`` (FIN after fsync)."""
    argv = ctx.tool("nsq-to-file", "--topic", "--channel", "--output-dir", "--sync-interval")
    return _to_file(ctx, n, size, argv, "nsq-to-file", sync_interval, extra)


def go_nsq_to_file(ctx: Context, n: int, size: int) -> Sample:
    """Go's nsq_to_file with the same flags (it too FINs only after a sync)."""
    return _to_file(ctx, n, size, ctx.go_app("nsq_to_file"), "nsq_to_file", "1s", ())


def _to_file(ctx: Context, n: int, size: int, argv: list[str], name: str, sync_interval: str,
             extra: tuple[str, ...]) -> Sample:
    """msgs/s runs from the process start until the broker shows the channel fully acknowledged;
    the tool is then stopped with SIGTERM and its files must hold exactly N lines. ``drain_s`` is
    the time from the last write to a file (its mtime) to that moment (bounded by the 20 ms poll).
    """
    topic = ctx.topic(name)
    out_dir = ctx.workdir / f"to_file_{topic}"
    out_dir.mkdir()
    broker = ctx.broker

    def acknowledged() -> bool:
        chan = broker.channel_stats(topic, CHANNEL) or {}
        return chan.get("depth") == 0 and chan.get("in_flight_count") == 0

    try:
        _prefill(ctx, topic, n, size)
        run = _run_until(argv + ["--topic", topic, "--channel", CHANNEL, "--nsqd-tcp-address",
                                 broker.tcp_address, "--output-dir", str(out_dir),
                                 "--sync-interval", sync_interval, *extra], acknowledged, n, name,
                         "the channel was acknowledged")
        verify_drained(broker, topic, CHANNEL, n)
        lines = count_lines(out_dir)
        if lines != n:
            raise VerificationFailed(f"{name} wrote {lines} lines, expected {n}")
        drain = run.done_at - newest_mtime(out_dir)
    finally:
        broker.delete_topic(topic)
        shutil.rmtree(out_dir, ignore_errors=True)
    return Sample(rate(n, run.done_after), run.cpu, run.peak_rss_kib, {"drain_s": drain})


def _run_until(argv: list[str], done: Callable[[], bool], n: int, name: str,
               what: str) -> ProcessRun:
    """Run a tool that runs until told to stop: SIGTERM once ``done()``, which must come first;
    then it must exit 0 (or 130/143, as interrupted)."""
    run = run_process(argv, until=done, timeout=timeout_for(n))
    if run.done_after is None:
        check_exit(run, name)
        raise VerificationFailed(f"{name} exited before {what}")
    check_exit(run, f"{name} (after SIGTERM)", ok_codes=(0, 130, 143))
    return run


def nsq_to_file_sync_30s(ctx: Context, n: int, size: int) -> Sample:
    """As nsq_to_file with ``--sync-interval 30s``: the drain must not wait for the interval."""
    return nsq_to_file(ctx, n, size, sync_interval="30s")


def nsq_to_file_in_flight_1000(ctx: Context, n: int, size: int) -> Sample:
    """As nsq_to_file with ``--max-in-flight 1000`` (Go's default is 200): each fdatasync covers
    up to 1000 messages instead of 200, the lever that bounds the default row."""
    return nsq_to_file(ctx, n, size, extra=("--max-in-flight", "1000"))


def nsq_to_nsq(ctx: Context, n: int, size: int) -> Sample:
    """The relay, FIN after the destination's OK, MPUB batches (defaults: 200 in flight)."""
    argv = ctx.tool("nsq-to-nsq", "--topic", "--destination-nsqd-tcp-address")
    return _relay(ctx, n, size, argv, "nsq-to-nsq")


def nsq_to_nsq_in_flight_1000(ctx: Context, n: int, size: int) -> Sample:
    """As nsq_to_nsq with ``--max-in-flight 1000`` (Go's default and ours is 200)."""
    argv = ctx.tool("nsq-to-nsq", "--topic", "--destination-nsqd-tcp-address")
    return _relay(ctx, n, size, argv + ["--max-in-flight", "1000"], "nsq-to-nsq")


def go_nsq_to_nsq(ctx: Context, n: int, size: int) -> Sample:
    """Go's nsq_to_nsq with the same flags: one PUB per message, FIN on its OK."""
    return _relay(ctx, n, size, ctx.go_app("nsq_to_nsq"), "nsq_to_nsq")


def _relay(ctx: Context, n: int, size: int, argv: list[str], name: str) -> Sample:
    """Topic -> the same topic on a second broker of the same kind, started for the run: msgs/s
    from the process start until the source channel is fully acknowledged and the destination
    has all N; then SIGTERM. Every message FINed once, and published once."""
    source = ctx.broker
    destination = ctx.second_broker()
    topic = ctx.topic(name)

    def relayed() -> bool:
        chan = source.channel_stats(topic, CHANNEL) or {}
        arrived = (destination.topic_stats(topic) or {}).get("message_count", 0)
        return chan.get("depth") == 0 and chan.get("in_flight_count") == 0 and arrived >= n

    try:
        _prefill(ctx, topic, n, size)
        destination.create_topic(topic, "check")
        run = _run_until(argv + ["--topic", topic, "--channel", CHANNEL, "--nsqd-tcp-address",
                                 source.tcp_address, "--destination-nsqd-tcp-address",
                                 destination.tcp_address], relayed, n, name,
                         "every message was relayed")
        verify_drained(source, topic, CHANNEL, n)
        verify_published(destination, topic, n)
    finally:
        source.delete_topic(topic)
        destination.stop()
    return Sample(rate(n, run.done_after), run.cpu, run.peak_rss_kib)


def one_message(ctx: Context, n: int, size: int) -> Sample:
    """``nsq-pub -m x``, process start to exit: the median of 10 runs, in milliseconds."""
    argv = ctx.tool("nsq-pub", "--message")
    topic = ctx.topic("one")
    walls, cpus, peaks = [], [], []
    try:
        ctx.broker.create_topic(topic)
        for _ in range(ONE_MESSAGE_RUNS):
            run = run_process(argv + ["--topic", topic, "--nsqd-tcp-address",
                                      ctx.broker.tcp_address, "-m", "x"], timeout=60)
            check_exit(run, "nsq-pub -m x")
            walls.append(run.wall * 1000)
            cpus.append(run.cpu)
            peaks.append(run.peak_rss_kib)
        verify_published(ctx.broker, topic, ONE_MESSAGE_RUNS)
    finally:
        ctx.broker.delete_topic(topic)
    return Sample(statistics.median(walls), statistics.median(cpus), max(peaks))
