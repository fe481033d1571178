"""Library workloads: nsqcli.lib Reader/Writer and the pynsq 0.9.1 baselines, same client code.

Each runs ``python -m bench.workloads.client`` (see client.py) in its own process; msgs/s comes
from the client's own clock (first publish or Reader creation to the last ack or handler call),
so interpreter start-up is not counted; CPU seconds and peak RSS are of the whole process.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from pathlib import Path

from ..measure import run_process
from . import Context, Sample, Unavailable, VerificationFailed, check_exit, rate, timeout_for
from . import verify_acknowledged, verify_drained, verify_published
from .data import bodies

CHANNEL = "bench"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
_MODULES = {"pynsq": ("nsq",),
            "nsqcli": ("nsqcli.lib.reader", "nsqcli.lib.writer", "nsqcli.lib.publisher")}


def _client(impl: str, role: str, ctx: Context, topic: str, n: int, size: int,
            mode: str = "callback", addresses: list[str] | None = None,
            max_in_flight: int | None = None) -> dict:
    for module in _MODULES[impl]:
        if importlib.util.find_spec(module) is None:
            raise Unavailable(f"{module} is not importable")
    argv = [sys.executable, "-m", "bench.workloads.client", role, "--impl", impl,
            "--nsqd-tcp-address", ",".join(addresses or [ctx.broker.tcp_address]), "--topic", topic,
            "--channel", CHANNEL, "-n", str(n), "--size", str(size), "--window", str(ctx.window),
            "--mode", mode, "--max-in-flight", str(max_in_flight or ctx.max_in_flight)]
    run = run_process(argv, cwd=str(REPO_ROOT), timeout=timeout_for(n))
    check_exit(run, f"{impl} {role}")
    try:
        result = json.loads(run.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise VerificationFailed(f"{impl} {role} printed no result: {run.stdout[-200:]!r}") from None
    if result["count"] != n or result["errors"]:
        raise VerificationFailed(f"{impl} {role}: {result['count']} of {n} ok, "
                                 f"{result['errors']} errors")
    result["run"] = run
    return result


def _writer(impl: str, mode: str, ctx: Context, n: int, size: int, role: str = "writer") -> Sample:
    topic = ctx.topic(f"{impl}-{role}")
    try:
        ctx.broker.create_topic(topic)
        result = _client(impl, role, ctx, topic, n, size, mode)
        verify_published(ctx.broker, topic, n)
    finally:
        ctx.broker.delete_topic(topic)
    run = result["run"]
    return Sample(rate(n, result["elapsed"]), run.cpu, run.peak_rss_kib)


def _reader(impl: str, ctx: Context, n: int, size: int, role: str = "reader") -> Sample:
    topic = ctx.topic(f"{impl}-{role}")
    try:
        ctx.broker.create_topic(topic, CHANNEL)
        ctx.broker.prefill(topic, bodies(n, size))
        result = _client(impl, role, ctx, topic, n, size)
        verify_drained(ctx.broker, topic, CHANNEL, n)
    finally:
        ctx.broker.delete_topic(topic)
    run = result["run"]
    return Sample(rate(n, result["elapsed"]), run.cpu, run.peak_rss_kib)


#: lib-reader-few-rdy: messages handled per run, and its handler's time per message
FEW_RDY_N = 300
FEW_RDY_HANDLER_MS = 50


def _reader_few_rdy(impl: str, ctx: Context, n: int, size: int) -> Sample:
    """max_in_flight 1 across two nsqds that each hold ``n`` messages, a coroutine handler of
    FEW_RDY_HANDLER_MS: the rate of the first ``n`` handled. One message at a time is the
    ideal, 1000 / FEW_RDY_HANDLER_MS msg/s; time with no RDY anywhere shows as less."""
    second = ctx.second_broker()
    brokers = [ctx.broker, second]
    topic = ctx.topic(f"{impl}-few-rdy")
    try:
        for broker in brokers:
            broker.create_topic(topic, CHANNEL)
            broker.prefill(topic, bodies(n, size))
        result = _client(impl, "reader-few-rdy", ctx, topic, n, size, max_in_flight=1,
                         addresses=[broker.tcp_address for broker in brokers])
        verify_acknowledged(brokers, topic, CHANNEL, n, 2 * n, result["handled"])
    finally:
        for broker in brokers:
            broker.delete_topic(topic)
        second.stop()
    run = result["run"]
    return Sample(rate(n, result["elapsed"]), run.cpu, run.peak_rss_kib,
                  {"ideal": 1000 / FEW_RDY_HANDLER_MS})


def nsqcli_reader_few_rdy(ctx: Context, n: int, size: int) -> Sample:
    return _reader_few_rdy("nsqcli", ctx, n, size)


def pynsq_reader_few_rdy(ctx: Context, n: int, size: int) -> Sample:
    return _reader_few_rdy("pynsq", ctx, n, size)


def nsqcli_writer(ctx: Context, n: int, size: int) -> Sample:
    """nsqcli.lib Writer: one pub per message, windows of awaitables gathered."""
    return _writer("nsqcli", "gather", ctx, n, size)


def nsqcli_writer_callbacks(ctx: Context, n: int, size: int) -> Sample:
    """nsqcli.lib Writer driven exactly like the pynsq baseline (callbacks, sliding window)."""
    return _writer("nsqcli", "callback", ctx, n, size)


def nsqcli_publisher(ctx: Context, n: int, size: int) -> Sample:
    """nsqcli.lib Publisher.publish_all over a list of N bodies built in memory: nsq-pub's
    engine without reading and splitting stdin."""
    return _writer("nsqcli", "list", ctx, n, size, role="publisher")


def nsqcli_publisher_aiter(ctx: Context, n: int, size: int) -> Sample:
    """The same Publisher fed one body at a time by an async generator (a relay's shape)."""
    return _writer("nsqcli", "aiter", ctx, n, size, role="publisher")


def nsqcli_reader(ctx: Context, n: int, size: int) -> Sample:
    return _reader("nsqcli", ctx, n, size)


def nsqcli_reader_iter(ctx: Context, n: int, size: int) -> Sample:
    """nsqcli.lib Reader consumed with ``async for ... in reader.messages()``, ``await
    message.fin()`` each: the lib-reader goal through the iterator."""
    return _reader("nsqcli", ctx, n, size, role="reader-iter")


def pynsq_writer(ctx: Context, n: int, size: int) -> Sample:
    """pynsq Writer.pub per message, a sliding window of publishes whose callbacks are awaited."""
    return _writer("pynsq", "callback", ctx, n, size)


def pynsq_reader(ctx: Context, n: int, size: int) -> Sample:
    return _reader("pynsq", ctx, n, size)


def pynsq_one_message(ctx: Context, n: int, size: int) -> Sample:
    """pynsq: start a process, publish one message, exit (median of 10, milliseconds)."""
    if importlib.util.find_spec("nsq") is None:
        raise Unavailable("pynsq is not installed (pip install -e '.[bench]')")
    topic = ctx.topic("pynsq-one")
    walls, cpus, peaks = [], [], []
    try:
        ctx.broker.create_topic(topic)
        for _ in range(10):
            argv = [sys.executable, "-m", "bench.workloads.client", "one", "--impl", "pynsq",
                    "--nsqd-tcp-address", ctx.broker.tcp_address, "--topic", topic]
            run = run_process(argv, cwd=str(REPO_ROOT), timeout=60)
            check_exit(run, "pynsq one message")
            walls.append(run.wall * 1000)
            cpus.append(run.cpu)
            peaks.append(run.peak_rss_kib)
        verify_published(ctx.broker, topic, 10)
    finally:
        ctx.broker.delete_topic(topic)
    return Sample(statistics.median(walls), statistics.median(cpus), max(peaks))
