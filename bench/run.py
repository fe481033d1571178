"""``python -m bench``: run the workloads of issue 7 and print the results table."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from . import catalog, measure
from .brokers import (
    BROKER_KINDS, Broker, BrokerUnavailable, external_broker, find_nsq_bin, start_broker,
)
from .report import Result, as_json, legend, table
from .workloads import Context, Unavailable, VerificationFailed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    go_apps = ", ".join(w.name.removeprefix("go-") for w in catalog.WORKLOADS if w.is_go)
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Throughput, CPU and memory of nsqcli's tools and library, side by side with "
                    f"pynsq 0.9.1 (and, on a real nsqd, Go's {go_apps}) "
                    "measured in the same run on the same broker.")
    parser.add_argument("-w", "--workloads", default=",".join(catalog.DEFAULT),
                        help="comma-separated workloads, or 'all' (default: all but rss-* and "
                             "lib-reader-few-rdy); "
                             f"known: {', '.join(catalog.BY_NAME)}")
    parser.add_argument("-n", type=int, default=500_000, help="messages per run (default 500000)")
    parser.add_argument("--size", type=int, default=100, help="message size in bytes (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per workload (default 3)")
    parser.add_argument("--broker", default="embedded",
                        help=f"comma-separated brokers to start: {', '.join(BROKER_KINDS)} "
                             "(default embedded; real: the nsqd binary of --nsq-bin; ignored "
                             "with --nsqd-tcp-address)")
    parser.add_argument("--nsq-bin", metavar="DIR",
                        help="directory of NSQ's binaries (nsqd and Go's apps) for --broker real "
                             "and the Go columns (default: the directory of NSQCLI_TEST_NSQD, "
                             "else ../shared/nsq/bin next to the repository)")
    parser.add_argument("--nsqd-option", metavar="NAME=VALUE", action="append", default=[],
                        help="--broker real: an nsqd option by the test fixtures' name, e.g. "
                             "mem_queue_size=1000000 (--mem-queue-size); repeatable")
    parser.add_argument("--nsqd-tcp-address", help="use this external nsqd (HOST:PORT)")
    parser.add_argument("--nsqd-http-address", help="its HTTP address (required with the above)")
    parser.add_argument("--window", type=int, default=1000,
                        help="writer workloads: publishes outstanding at once (default 1000)")
    parser.add_argument("--max-in-flight", type=int, default=2500,
                        help="reader workloads: max_in_flight (default 2500)")
    parser.add_argument("--rss-counts", default="100000,1000000",
                        help="rss-* workloads: message counts (default 100000,1000000)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="do not add the pynsq and Go baselines of the selected workloads")
    parser.add_argument("--output", help="also write the report (markdown) to this file")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--profile", metavar="DIR",
                        help="sample every measured process with py-spy into DIR (figures of a "
                             "profiled run are not comparable); summarise: python -m bench.profile")
    parser.add_argument("--workdir", help="directory for input files (default: a temporary one)")
    args = parser.parse_args(argv)
    if bool(args.nsqd_tcp_address) != bool(args.nsqd_http_address):
        parser.error("--nsqd-tcp-address and --nsqd-http-address go together")
    for name in ("n", "size", "repeats", "window", "max_in_flight"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    args.brokers = [b for b in args.broker.split(",") if b]
    unknown = [b for b in args.brokers if b not in BROKER_KINDS]
    if unknown:
        parser.error(f"unknown broker {', '.join(unknown)}: choose from {', '.join(BROKER_KINDS)}")
    on_nsqd = bool(args.nsqd_tcp_address) or "real" in args.brokers  # where Go's apps run
    try:
        args.selected = catalog.select([w for w in args.workloads.split(",") if w],
                                       with_baselines=not args.no_baselines, with_go=on_nsqd)
        args.rss_counts = tuple(int(c) for c in args.rss_counts.split(","))
    except ValueError as exc:
        parser.error(str(exc))
    args.nsq_bin = find_nsq_bin(args.nsq_bin)
    args.nsqd_options = {}
    for option in args.nsqd_option:
        name, sep, value = option.partition("=")
        if not sep or not name:
            parser.error(f"--nsqd-option wants NAME=VALUE, not {option!r}")
        args.nsqd_options[name] = (int(value) if value.isdigit() else
                                   {"true": True, "false": False}.get(value.lower(), value))
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_workload(ctx: Context, result: Result, repeats: int) -> None:
    workload = result.workload
    for repeat in range(1, repeats + 1):
        try:
            sample = workload.run(ctx, result.n, result.size)
        except Unavailable as exc:
            result.status = f"unavailable: {exc}"
        except VerificationFailed as exc:
            result.status = f"FAILED: {exc}"
        except Exception as exc:  # the harness reports a crash and goes on with the next one
            traceback.print_exc(file=sys.stderr)
            result.status = f"error: {type(exc).__name__}: {exc}"
        else:
            result.samples.append(sample)
            log(f"  {workload.name} #{repeat}: {sample.value:,.1f} {workload.unit}, "
                f"cpu {sample.cpu:.2f} s, rss {sample.peak_rss_kib / 1024:.1f} MiB {sample.extra}")
            continue
        log(f"  {workload.name}: {result.status}")
        result.samples.clear()
        return


def run_on_broker(broker: Broker, args: argparse.Namespace, workdir: Path) -> list[Result]:
    ctx = Context(broker, workdir, window=args.window, max_in_flight=args.max_in_flight,
                  rss_counts=args.rss_counts, nsq_bin=args.nsq_bin,
                  nsqd_options=args.nsqd_options or {})
    results = []
    for workload in args.selected:
        if workload.is_go and not broker.is_nsqd:
            log(f"[{broker.label}] {workload.name}: skipped (Go's apps run on a real nsqd only)")
            continue
        n = workload.fixed_n or args.n
        result = Result(workload, broker.label, n, args.size)
        log(f"[{broker.label}] {workload.name} ({workload.title})")
        run_workload(ctx, result, 1 if workload.unit == "MiB" else args.repeats)
        results.append(result)
    return results


def _revision() -> str:
    """The measured code: commit id, plus "+changes" when the work tree differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                                capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown revision"
    return f"commit {commit or 'unknown'}" + (" +changes" if dirty.strip() else "")


PREAMBLE = """# nsqcli benchmark results (issue 7)

Produced by `python -m bench` (see bench/README.md). Every figure names its broker: the lean
measurement peer (`bench peer`: acknowledges at once and streams pre-encoded messages, so the
client's own cost is what is measured), the embedded nsqd (a Python broker sharing the machine's
cores, which bounds several rows), a real nsqd binary started by the harness (`real nsqd`) or an
external nsqd; on a real nsqd Go's apps are measured too ("vs Go": ours / Go's). Every run
verified its counts (all published messages acknowledged; every consumed message FINed exactly
once, but for Go's nsq_tail, see bench/README.md)."""


def header(args: argparse.Namespace, revision: str, load_before: tuple,
           load_after: tuple) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return PREAMBLE + "\n\n" + "\n".join([
        f"Measured {now} ({revision}) on {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}; N = {args.n:,} messages of {args.size} B, "
        f"{args.repeats} repeats (median, min-max); load average before/after "
        f"{load_before[0]:.2f}/{load_after[0]:.2f}.",
        "Tools: whole process (start to exit; nsq-to-file: start to channel fully acknowledged). "
        "Library: the client's own clock (connected to last ack / Reader created to last handler "
        "call). CPU s and peak RSS (VmHWM) are of the measured client process only.",
        "Command: `python -m bench " + " ".join(sys.argv[1:]) + "`",
    ])


def compile_bytecode() -> None:
    """Byte-compile nsqcli as ``pip install`` does. An editable install under
    PYTHONDONTWRITEBYTECODE=1 (this machine's default) would otherwise recompile every module in
    every measured process, which is not what a user's installed tools do."""
    import compileall

    import nsqcli

    compileall.compile_dir(str(Path(nsqcli.__file__).parent), quiet=1)


def install_note() -> str:
    """How nsqcli is installed, as every measured process sees it at start-up."""
    probe = "import sys; print(any(m.startswith('__editable__') for m in sys.modules))"
    finder = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    if finder.strip() == "True":
        note = ("nsqcli is installed with setuptools' editable finder, which adds about 2 MiB and "
                "10-15 ms to every process start: start-up and RSS figures are NOT those of a "
                "regular install (`pip install '.[bench]'`, or `pip install -e '.[bench]' "
                "--config-settings editable_mode=compat`)")
        log("warning: " + note)
        return "Install: " + note + "."
    return "Install: nsqcli is imported from a plain sys.path entry, as after `pip install`."


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    compile_bytecode()
    install = install_note()
    revision = _revision()  # before the run: the code that was measured
    if args.profile:
        measure.PROFILE_DIR = Path(args.profile)
        measure.PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nsqcli-bench-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        load_before = os.getloadavg()
        results: list[Result] = []
        if args.nsqd_tcp_address:
            results += run_on_broker(external_broker(args.nsqd_tcp_address,
                                                     args.nsqd_http_address), args, workdir)
        else:
            for kind in args.brokers:
                try:
                    broker = start_broker(kind, args.nsq_bin, args.nsqd_options)
                except BrokerUnavailable as exc:
                    log(f"broker {kind} unavailable: {exc}")
                    continue
                if broker.process is not None:  # py-spy samples Python, not the Go nsqd
                    measure.profile_process(broker.process.pid, f"broker-{kind}")
                try:
                    results += run_on_broker(broker, args, workdir)
                finally:
                    broker.stop()
        load_after = os.getloadavg()
    report = "\n\n".join([header(args, revision, load_before, load_after) + "\n" + install, table(results),
                          legend(results)]) + "\n"
    print(report)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(report)
    if args.json:
        Path(args.json).write_text(json.dumps(as_json(results), indent=1) + "\n")
    failed = [r for r in results if r.status.startswith(("FAILED", "error"))]
    return 1 if failed or not results else 0
