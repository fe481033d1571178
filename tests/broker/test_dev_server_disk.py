"""``nsqcli dev-server`` and its data path: memory stays bounded (the overflow is on disk),
``--data-path`` survives a restart and a kill -9, the temporary data path goes at exit, and one
data path serves one nsqd at a time. Embedded by nature: these run the dev-server process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from nsqcli.lib.protocol import commands as cmd

from test_dev_server import DevServer, running  # noqa: F401 - the fixture
from test_nsqd_wire import RawNSQ

from polling import wait_for

NO_LOOKUPD = ["--tcp-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0", "--no-lookupd"]


def publish(server: DevServer, topic: str, bodies: list[bytes], batch: int = 500) -> None:
    """MPUB ``bodies`` on one connection, each batch acknowledged before the next."""
    port = int(server.addresses["nsqd TCP"].rsplit(":", 1)[1])
    conn = RawNSQ(SimpleNamespace(tcp_port=port), timeout=30)
    try:
        for start in range(0, len(bodies), batch):
            conn.send(cmd.mpub(topic, bodies[start:start + batch]))
            conn.ok()
    finally:
        conn.close()


def stats(server: DevServer, topic: str) -> dict | None:
    status, body = server.get("nsqd HTTP", f"/stats?format=json&topic={topic}")
    assert status == 200, body
    topics = json.loads(body)["topics"]
    return topics[0] if topics else None


def data_path_of(server: DevServer) -> Path:
    return Path(re.search(r"data path\s+(\S+)", server.banner).group(1))


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc")
def test_queued_messages_beyond_mem_queue_size_do_not_grow_memory(running):
    """240 MB queued; memory holds 1,000 messages of 4 KiB, the rest is on disk. Keeping all of
    it in memory (the broker before its disk queue) peaks above 300 MiB."""
    server = running(*NO_LOOKUPD, "--mem-queue-size", "1000")
    count, size = 60_000, 4096
    baseline = peak_rss_mib(server.process.pid)
    publish(server, "big", [b"%0*d" % (size, i) for i in range(count)])
    topic = stats(server, "big")
    assert (topic["depth"], topic["backend_depth"]) == (count, count - 1000)
    assert peak_rss_mib(server.process.pid) - baseline < 100
    assert server.stop(signal.SIGTERM)[0] == 130  # SIGTERM: a drained stop, status 130


def test_data_path_keeps_topics_and_messages_across_a_restart(running, tmp_path):
    args = [*NO_LOOKUPD, "--data-path", str(tmp_path), "--mem-queue-size", "5"]
    server = running(*args)
    assert data_path_of(server) == tmp_path and "temporary" not in server.banner
    publish(server, "kept", [b"m%d" % i for i in range(20)])
    assert server.post("nsqd HTTP", "/topic/pause?topic=kept", b"")[0] == 200
    assert server.stop(signal.SIGTERM)[0] == 130  # SIGTERM: a drained stop, status 130
    again = running(*args)
    topic = stats(again, "kept")
    assert (topic["depth"], topic["paused"]) == (20, True)


def test_messages_on_disk_survive_kill_9(running, tmp_path):
    args = [*NO_LOOKUPD, "--data-path", str(tmp_path), "--mem-queue-size", "5"]
    server = running(*args)
    assert server.post("nsqd HTTP", "/topic/create?topic=crash", b"")[0] == 200
    assert server.post("nsqd HTTP", "/channel/create?topic=crash&channel=c", b"")[0] == 200
    publish(server, "crash", [b"m%d" % i for i in range(50)])
    channel = stats(server, "crash")["channels"][0]
    assert (channel["depth"], channel["backend_depth"]) == (50, 45)
    # nsqd writes its metadata soon after a channel is created: wait for it, then kill
    assert wait_for(lambda: "crash" in (tmp_path / "nsqcli-nsqd.json").read_text()
                    if (tmp_path / "nsqcli-nsqd.json").exists() else False)
    server.process.kill()
    server.process.wait()
    again = running(*args)  # the lock died with the process
    channel = stats(again, "crash")["channels"][0]
    # the 5 in memory are lost, as with nsqd; what went to disk is all there
    assert (channel["channel_name"], channel["depth"], channel["backend_depth"]) == ("c", 45, 45)


def test_the_temporary_data_path_is_removed_at_exit(running):
    server = running(*NO_LOOKUPD, "--mem-queue-size", "1")
    path = data_path_of(server)
    assert "temporary" in server.banner and path.is_dir()
    publish(server, "spilled", [b"a", b"b", b"c"])
    assert any(path.rglob("*.seg"))
    assert server.stop(signal.SIGTERM)[0] == 130  # SIGTERM: a drained stop, status 130
    assert not path.exists()


def test_a_data_path_in_use_is_refused_with_one_line(running, tmp_path):
    running(*NO_LOOKUPD, "--data-path", str(tmp_path))
    second = subprocess.run([sys.executable, "-m", "nsqcli.dev_server", *NO_LOOKUPD,
                             "--data-path", str(tmp_path)],
                            capture_output=True, text=True, timeout=30)
    assert second.returncode != 0
    assert "in use by another nsqd" in second.stderr
    assert "Traceback" not in second.stderr
