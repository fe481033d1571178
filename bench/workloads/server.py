"""The embedded broker itself: peak RSS of ``nsqcli dev-server`` holding N queued messages.

The measured process is the dev-server (started on free ports, ``--no-lookupd``, its default
temporary data path). Once it answers /ping, a topic with one channel is filled with N distinct
bodies through pipelined MPUBs; everything beyond ``--mem-queue-size`` (10,000 per topic and
channel) must be in the channel's disk queue, so the peak RSS stays flat in N. The dev-server is
then stopped with SIGTERM and must exit 0. ``--broker`` plays no part here.
"""

from __future__ import annotations

import time
import urllib.error

from nsqcli.broker.daemons import free_port

from ..brokers import Broker
from ..measure import run_process
from . import Context, Sample, VerificationFailed, check_exit, timeout_for
from .data import bodies

TOPIC = "bench_dev_server"
CHANNEL = "bench"


def dev_server_rss(ctx: Context, n: int, size: int) -> Sample:
    argv = ctx.tool("nsqcli", "dev-server")
    tcp, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    server = Broker("embedded", tcp, http)
    outcome: dict = {}

    def fill() -> bool:
        """Polled until True: False while the server is not up yet; then fills it."""
        try:
            server.http("GET", "/ping")
        except (OSError, urllib.error.URLError):
            return False
        try:
            start = time.perf_counter()
            server.create_topic(TOPIC, CHANNEL)
            server.prefill(TOPIC, bodies(n, size))
            outcome["fill_s"] = time.perf_counter() - start
            outcome["channel"] = server.channel_stats(TOPIC, CHANNEL) or {}
        except Exception as exc:  # reported below, after the server was stopped
            outcome["error"] = exc
        return True

    run = run_process(argv + ["dev-server", "--no-lookupd", "--quiet", "--tcp-address", tcp,
                              "--http-address", http], until=fill, until_interval=0.05,
                      timeout=timeout_for(n))
    if "error" in outcome:
        raise VerificationFailed(f"filling the dev-server failed: {outcome['error']!r}")
    if run.done_after is None:
        check_exit(run, "nsqcli dev-server")
        raise VerificationFailed("the dev-server exited before it was filled")
    check_exit(run, "nsqcli dev-server (after SIGTERM)", ok_codes=(130,))  # the table's status
    channel = outcome["channel"]
    if channel.get("depth") != n or channel.get("message_count") != n:
        raise VerificationFailed(f"channel holds depth={channel.get('depth')} of "
                                 f"message_count={channel.get('message_count')}, expected {n}")
    return Sample(run.peak_rss_kib / 1024, run.cpu, run.peak_rss_kib,
                  {"fill_msgs_per_s": round(n / outcome["fill_s"]),
                   "backend_depth": channel.get("backend_depth")})
