"""Run one measured client process: wall time, CPU seconds and peak RSS of that process alone.

Peak RSS is read from ``/proc/<pid>/status`` (VmHWM, the high-water mark of the process's own
address space) while it runs: ``ru_maxrss`` from wait4 is not usable here, because on Linux a child
started with vfork/posix_spawn inherits the parent's high-water mark at exec. CPU seconds come from
wait4's rusage of that one child (user + system).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, IO

POLL_INTERVAL_S = 0.01

#: When set (``python -m bench --profile DIR``), every measured process is sampled by py-spy
#: (attached by pid, so exit status and rusage stay the process's own) into this directory.
PROFILE_DIR: Path | None = None
_profile_count = itertools.count(1)


def profile_process(pid: int, name: str) -> subprocess.Popen | None:
    """Sample ``pid`` with py-spy into PROFILE_DIR until it exits (when profiling is on)."""
    if PROFILE_DIR is None:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = PROFILE_DIR / f"{next(_profile_count):03d}-{name}.txt"
    try:
        return subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "250", "--format",
                                 "raw", "--output", str(out), "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def _process_name(argv: list[str]) -> str:
    if len(argv) > 3 and argv[1:3] == ["-m", "bench.workloads.client"]:
        return f"{argv[argv.index('--impl') + 1]}-{argv[3]}"
    return Path(argv[0]).name


@dataclass
class ProcessRun:
    returncode: int
    wall: float  # seconds from spawn to exit
    cpu: float  # user + system seconds of the measured process
    peak_rss_kib: int
    stdout: str
    stderr: str
    done_after: float | None = None  # seconds from spawn until ``until`` first returned True
    done_at: float | None = None  # time.time() of that moment (to compare with file mtimes)
    timed_out: bool = False  # killed after ``timeout`` seconds


def _vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _monitor(pid, start, state, finished, until, until_interval, stop_signal, timeout) -> None:
    """Poll the peak RSS (and ``until``) until the process has exited; kill it after timeout."""
    next_check = start + until_interval
    while not finished.wait(POLL_INTERVAL_S):
        state["peak"] = max(state["peak"], _vm_hwm_kib(pid))
        now = time.perf_counter()
        if until is not None and state["done_after"] is None and now >= next_check:
            next_check = now + until_interval
            if until():
                state["done_after"], state["done_at"] = time.perf_counter() - start, time.time()
                _signal(pid, stop_signal)
        if now - start > timeout:
            state["timed_out"] = True
            _signal(pid, signal.SIGKILL)
            return


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def run_process(
    argv: list[str],
    *,
    stdin: IO[bytes] | int | None = subprocess.DEVNULL,
    stdout_to: str | None = None,
    timeout: float = 600.0,
    until: Callable[[], bool] | None = None,
    until_interval: float = 0.02,
    stop_signal: int = signal.SIGTERM,
    env: dict | None = None,
    cwd: str | None = None,
) -> ProcessRun:
    """Run ``argv`` to completion and measure it.

    ``stdout_to`` is a path (e.g. ``/dev/null``) for the data output; otherwise stdout is captured.
    ``until`` is polled every ``until_interval`` seconds while the process runs; the first time it
    returns True the moment is recorded and the process is sent ``stop_signal`` (for tools that
    run until told to stop, such as nsq-to-file).
    """
    out_file = open(stdout_to, "wb") if stdout_to else tempfile.TemporaryFile()
    err_file = tempfile.TemporaryFile()
    try:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdin=stdin, stdout=out_file, stderr=err_file, env=env,
                                   cwd=cwd)
        pid = process.pid
        profiler = profile_process(pid, _process_name(argv))
        state = {"peak": 0, "done_after": None, "done_at": None, "timed_out": False}
        finished = threading.Event()
        monitor = threading.Thread(
            target=_monitor, args=(pid, start, state, finished, until, until_interval,
                                   stop_signal, timeout), daemon=True)
        monitor.start()
        _, status, usage = os.wait4(pid, 0)  # blocking: the wall time is exact
        wall = time.perf_counter() - start
        finished.set()
        monitor.join()
        if profiler is not None:
            profiler.wait(timeout=30)
        peak, done_after, done_at = state["peak"], state["done_after"], state["done_at"]
        process.returncode = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        stdout = ""
        if not stdout_to:
            out_file.seek(0)
            stdout = out_file.read().decode(errors="replace")
        err_file.seek(0)
        stderr = err_file.read().decode(errors="replace")
        return ProcessRun(process.returncode, wall, cpu, peak, stdout, stderr, done_after, done_at,
                          state["timed_out"])
    finally:
        out_file.close()
        err_file.close()
