"""Every workload the harness knows: what it measures, its pynsq and Go baselines and issue 7's
target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .workloads import Context, Sample
from .workloads import library, server, tools


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    run: Callable[[Context, int, int], Sample]
    unit: str = "msg/s"  # or "ms" (lower is better) or "MiB"
    baseline: str | None = None  # the pynsq workload this one is compared with
    target: float | None = None  # issue 7's target, in ``unit``
    is_baseline: bool = False
    fixed_n: int | None = None  # workloads that ignore -n (one message)
    go_baseline: str | None = None  # the Go app's workload this one is compared with
    is_go: bool = False  # one of Go's apps: measured on a real nsqd only

    @property
    def higher_is_better(self) -> bool:
        return self.unit == "msg/s"

    def meets(self, value: float) -> bool | None:
        if self.target is None:
            return None
        return value >= self.target if self.higher_is_better else value <= self.target


def _rss(tool: Callable[[Context, int, int], Sample]) -> Callable[[Context, int, int], Sample]:
    """Peak RSS of a tool at each of ``ctx.rss_counts`` messages; the value is the largest peak."""
    def run(ctx: Context, n: int, size: int) -> Sample:
        by_n = {}
        cpu = 0.0
        for count in ctx.rss_counts:
            sample = tool(ctx, count, size)
            by_n[count] = sample.peak_rss_kib
            cpu += sample.cpu
        peak = max(by_n.values())
        return Sample(peak / 1024, cpu, peak, {"rss_by_n": by_n})
    return run


WORKLOADS = [
    Workload("nsq-pub", "stdin lines -> topic, all acknowledged (nsq-pub)", tools.nsq_pub,
             baseline="pynsq-writer", target=650_000, go_baseline="go-to_nsq"),
    Workload("nsq-tail", "topic -> /dev/null (nsq-tail -n N)", tools.nsq_tail,
             baseline="pynsq-reader", target=245_000, go_baseline="go-nsq_tail"),
    Workload("nsq-to-file", "topic -> file, FIN after fsync, --sync-interval 1s (nsq-to-file)",
             tools.nsq_to_file, baseline="pynsq-reader", target=125_000,
             go_baseline="go-nsq_to_file"),
    Workload("nsq-to-file-30s", "nsq-to-file with --sync-interval 30s (drain must stay < 1 s)",
             tools.nsq_to_file_sync_30s, baseline="pynsq-reader"),
    Workload("nsq-to-file-mif1000", "nsq-to-file with --max-in-flight 1000 (fdatasync per <= 1000)",
             tools.nsq_to_file_in_flight_1000, baseline="pynsq-reader"),
    Workload("nsq-to-nsq", "topic -> the same topic on a second broker, FIN after the "
             "destination's OK (nsq-to-nsq)", tools.nsq_to_nsq, go_baseline="go-nsq_to_nsq"),
    Workload("nsq-to-nsq-mif1000", "nsq-to-nsq with --max-in-flight 1000 (Go's default and ours "
             "is 200)", tools.nsq_to_nsq_in_flight_1000),
    Workload("lib-reader", "nsqcli.lib Reader, handler returning True", library.nsqcli_reader,
             baseline="pynsq-reader", target=150_000),
    Workload("lib-reader-iter", "nsqcli.lib Reader, async for over messages(), await "
             "message.fin()", library.nsqcli_reader_iter, baseline="pynsq-reader"),
    Workload("lib-reader-few-rdy", "nsqcli.lib Reader, max_in_flight 1 over 2 nsqds, 50 ms "
             "coroutine handler (ideal 20 msg/s)", library.nsqcli_reader_few_rdy,
             baseline="pynsq-reader-few-rdy", fixed_n=library.FEW_RDY_N),
    Workload("lib-writer", "nsqcli.lib Writer, one pub per message, awaited acks, pipelined",
             library.nsqcli_writer, baseline="pynsq-writer", target=110_000),
    Workload("lib-publisher", "nsqcli.lib Publisher.publish_all, N bodies built in memory, all "
             "acknowledged", library.nsqcli_publisher, baseline="pynsq-writer"),
    Workload("lib-publisher-aiter", "nsqcli.lib Publisher.publish_all, one body at a time from an "
             "async generator", library.nsqcli_publisher_aiter, baseline="pynsq-writer"),
    Workload("lib-writer-cb", "nsqcli.lib Writer driven like the pynsq baseline (callbacks)",
             library.nsqcli_writer_callbacks, baseline="pynsq-writer"),
    Workload("nsq-replay", "gzip archive -> topic (nsq-replay)", tools.nsq_replay,
             baseline="pynsq-writer", target=500_000),
    Workload("one-message", "one message published, process start to exit (nsq-pub -m x)",
             tools.one_message, unit="ms", baseline="pynsq-one", target=90, fixed_n=1),
    Workload("rss-nsq-pub", "peak RSS of nsq-pub", _rss(tools.nsq_pub), unit="MiB", target=30),
    Workload("rss-nsq-tail", "peak RSS of nsq-tail", _rss(tools.nsq_tail), unit="MiB", target=30),
    Workload("rss-nsq-to-file", "peak RSS of nsq-to-file", _rss(tools.nsq_to_file), unit="MiB",
             target=30),
    Workload("rss-nsq-replay", "peak RSS of nsq-replay", _rss(tools.nsq_replay), unit="MiB",
             target=30),
    Workload("rss-dev-server", "peak RSS of nsqcli dev-server holding N queued messages "
             "(beyond --mem-queue-size on disk)", server.dev_server_rss, unit="MiB", target=300),
    Workload("pynsq-writer", "pynsq 0.9.1 Writer.pub per message, callbacks awaited",
             library.pynsq_writer, is_baseline=True),
    Workload("pynsq-reader", "pynsq 0.9.1 Reader, handler returning True", library.pynsq_reader,
             is_baseline=True),
    Workload("pynsq-reader-few-rdy", "pynsq 0.9.1 Reader, max_in_flight 1 over 2 nsqds, 50 ms "
             "coroutine handler", library.pynsq_reader_few_rdy, is_baseline=True,
             fixed_n=library.FEW_RDY_N),
    Workload("pynsq-one", "pynsq 0.9.1: one message published, process start to exit",
             library.pynsq_one_message, unit="ms", is_baseline=True, fixed_n=1),
    Workload("go-to_nsq", "Go's to_nsq: stdin lines -> topic, one PUB at a time, each awaited "
             "(its only mode)", tools.go_to_nsq, is_baseline=True, is_go=True),
    Workload("go-nsq_tail", "Go's nsq_tail -n N -> /dev/null (exits before FINing its last "
             "in-flight messages)", tools.go_nsq_tail, is_baseline=True, is_go=True),
    Workload("go-nsq_to_file", "Go's nsq_to_file --sync-interval 1s (FIN after sync)",
             tools.go_nsq_to_file, is_baseline=True, is_go=True),
    Workload("go-nsq_to_nsq", "Go's nsq_to_nsq: one PUB per message, FIN on its OK",
             tools.go_nsq_to_nsq, is_baseline=True, is_go=True),
]

BY_NAME = {w.name: w for w in WORKLOADS}
# rss-* and the few-RDY row (minutes at 20 msg/s) run when named, or with "all"
DEFAULT = [w.name for w in WORKLOADS if not w.name.startswith("rss-") and w.name != "lib-reader-few-rdy"]


def select(names: list[str], with_baselines: bool = True, with_go: bool = False) -> list[Workload]:
    """The named workloads in catalogue order, plus the pynsq baselines they are compared with
    and, ``with_go``, Go's apps."""
    if "all" in names:
        names = [w.name for w in WORKLOADS if not w.is_baseline]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(BY_NAME)}")
    wanted = set(names)
    if with_baselines:
        wanted |= {BY_NAME[n].baseline for n in names if BY_NAME[n].baseline}
    if with_baselines and with_go:
        wanted |= {BY_NAME[n].go_baseline for n in names if BY_NAME[n].go_baseline}
    return [w for w in WORKLOADS if w.name in wanted]
