"""A tiny-N run of the benchmark harness against its measurement peer, so that it cannot rot.

Also checks what makes the figures trustworthy: the peer counts every FIN (and FINs of ids that
are not in flight), and the harness fails a run whose counts are wrong.
"""

from __future__ import annotations

import json
import socket
import sys
import struct

import pytest

from bench import catalog
from bench.brokers import start_broker
from bench.run import main
from bench.workloads import Context, Unavailable, VerificationFailed, verify_drained
from bench.workloads.data import bodies

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def peer():
    broker = start_broker("peer")
    yield broker
    broker.stop()


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    def exact(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "peer closed the connection"
            data += chunk
        return data

    size, frame_type = struct.unpack(">ll", exact(8))
    return frame_type, exact(size - 4)


def test_peer_counts_each_fin_once_and_flags_duplicates(peer):
    peer.create_topic("smoke_fin", "c")
    assert peer.prefill("smoke_fin", bodies(3, 10)) == 3
    with socket.create_connection(peer.tcp_address.split(":")) as sock:
        sock.sendall(b"  V2SUB smoke_fin c\nRDY 3\n")
        assert _read_frame(sock) == (0, b"OK")
        ids = []
        for _ in range(3):
            frame_type, data = _read_frame(sock)
            assert frame_type == 2 and data[26:] in (b"%010d" % i for i in range(3))
            ids.append(data[10:26])
        assert len(set(ids)) == 3
        sock.sendall(b"FIN " + ids[0] + b"\nFIN " + ids[0] + b"\nFIN " + ids[1] + b"\n")
        frame_type, data = _read_frame(sock)
        assert frame_type == 1 and data.startswith(b"E_FIN_FAILED")
    chan = peer.channel_stats("smoke_fin", "c")
    assert chan["finish_count"] == 2 and chan["fin_failed_count"] == 1
    # the third message went back to the channel when the client left: not drained
    with pytest.raises(VerificationFailed, match="fin_failed_count=1"):
        verify_drained(peer, "smoke_fin", "c", 3, timeout=0.2)


def test_peer_honours_rdy(peer):
    peer.create_topic("smoke_rdy", "c")
    peer.prefill("smoke_rdy", bodies(10, 10))
    with socket.create_connection(peer.tcp_address.split(":")) as sock:
        sock.sendall(b"  V2SUB smoke_rdy c\nRDY 2\n")
        assert _read_frame(sock) == (0, b"OK")
        first = [_read_frame(sock)[1][10:26] for _ in range(2)]
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            _read_frame(sock)  # RDY 2 with 2 in flight: nothing more
        sock.settimeout(5)
        sock.sendall(b"FIN " + first[0] + b"\n")
        assert _read_frame(sock)[0] == 2
    assert peer.channel_stats("smoke_rdy", "c")["finish_count"] == 1


def test_missing_tool_is_unavailable(peer, tmp_path):
    ctx = Context(peer, tmp_path)
    with pytest.raises(Unavailable):
        ctx.tool("nsq-no-such-tool")


def test_select_adds_baselines():
    names = [w.name for w in catalog.select(["nsq-tail", "lib-writer"])]
    assert names == ["nsq-tail", "lib-writer", "pynsq-writer", "pynsq-reader"]
    everything = {w.name for w in catalog.select(["all"], with_go=True)}
    assert everything == set(catalog.BY_NAME)  # every tool workload and every baseline
    with_go = [w.name for w in catalog.select(["nsq-pub", "nsq-to-file"], with_go=True)]
    assert with_go == ["nsq-pub", "nsq-to-file", "pynsq-writer", "pynsq-reader", "go-to_nsq",
                       "go-nsq_to_file"]
    with pytest.raises(ValueError, match="unknown workload"):
        catalog.select(["nope"])


def test_nsqd_options_and_go_baselines_in_the_arguments():
    from bench.run import parse_args

    args = parse_args(["--broker", "real", "-w", "nsq-tail", "--nsqd-option",
                       "mem_queue_size=1000000", "--nsqd-option", "snappy=false"])
    assert args.nsqd_options == {"mem_queue_size": 1000000, "snappy": False}
    assert [w.name for w in args.selected] == ["nsq-tail", "pynsq-reader", "go-nsq_tail"]
    assert [w.name for w in parse_args(["--broker", "peer", "-w", "nsq-tail"]).selected] == [
        "nsq-tail", "pynsq-reader"]  # Go's apps only where a real nsqd runs
    with pytest.raises(SystemExit):
        parse_args(["--nsqd-option", "mem_queue_size"])


def test_tiny_run_of_the_harness(tmp_path, capsys):
    output = tmp_path / "report.md"
    status = main(["--broker", "peer", "-n", "300", "--repeats", "1",
                   "-w", "nsq-pub,nsq-tail,nsq-to-nsq,lib-reader,lib-reader-iter,lib-writer",
                   "--output", str(output), "--json", str(tmp_path / "report.json")])
    report = output.read_text()
    assert report.strip() == capsys.readouterr().out.strip()
    rows = [line for line in report.splitlines() if line.startswith("| bench peer |")]
    assert [row.split("|")[2].strip() for row in rows] == [
        "nsq-pub", "nsq-tail", "nsq-to-nsq", "lib-reader", "lib-reader-iter", "lib-writer",
        "pynsq-writer", "pynsq-reader"]
    # the report quotes the command line it ran under (pytest's own flags among them): not that
    body = "\n".join(line for line in report.splitlines() if not line.startswith("Command:"))
    assert "FAILED" not in body and "error:" not in body
    assert status == 0
    for row in rows:
        if "unavailable" not in row:
            assert "msg/s" in row and "MiB" in row
    data = json.loads((tmp_path / "report.json").read_text())
    assert [d["workload"] for d in data] == [row.split("|")[2].strip() for row in rows]
    for entry in data:
        if entry["status"] == "ok":
            assert entry["n"] == 300 and len(entry["samples"]) == 1 and entry["median"] > 0


def test_measure_reports_the_child_s_own_peak_rss_and_cpu():
    from bench.measure import run_process

    code = "b = bytearray(64 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nimport time; time.sleep(0.1)"
    run = run_process([sys.executable, "-c", code])
    assert run.returncode == 0 and not run.timed_out
    assert run.peak_rss_kib >= 64 * 1024
    assert run.cpu > 0 and run.wall >= 0.1


def test_a_hanging_client_is_killed_and_fails_the_run():
    from bench.measure import run_process
    from bench.workloads import check_exit

    run = run_process([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert run.timed_out and run.wall < 10
    with pytest.raises(VerificationFailed, match="timed out"):
        check_exit(run, "sleeper")


@pytest.mark.real_only("starts the real nsqd and Go's apps next to NSQCLI_TEST_NSQD")
def test_tiny_run_on_the_real_nsqd_with_go_s_apps(tmp_path, capsys):
    from bench.brokers import find_nsq_bin

    nsq_bin = find_nsq_bin()
    missing = [app for app in ("to_nsq", "nsq_tail", "nsq_to_file", "nsq_to_nsq")
               if not (nsq_bin / app).exists()]
    if missing:
        pytest.skip(f"Go's {', '.join(missing)} not in {nsq_bin}")
    output = tmp_path / "report.md"
    status = main(["--broker", "real", "-n", "300", "--repeats", "1",
                   "-w", "nsq-pub,nsq-tail,nsq-to-file,nsq-to-nsq", "--output", str(output)])
    report = output.read_text()
    capsys.readouterr()
    assert status == 0, report
    rows = {row.split("|")[2].strip(): row.split("|") for row in report.splitlines()
            if row.startswith("| real nsqd v")}
    assert list(rows) == ["nsq-pub", "nsq-tail", "nsq-to-file", "nsq-to-nsq", "pynsq-writer",
                          "pynsq-reader", "go-to_nsq", "go-nsq_tail", "go-nsq_to_file",
                          "go-nsq_to_nsq"]
    for name, cells in rows.items():
        assert "msg/s" in cells[4], (name, cells)  # measured and verified, not unavailable
    for name in ("nsq-pub", "nsq-tail", "nsq-to-file", "nsq-to-nsq"):
        assert rows[name][8].strip().endswith("x"), rows[name]  # the "vs Go" ratio


def test_rss_dev_server_runs_and_verifies_its_disk_queue(tmp_path):
    """The dev-server exits 130 after SIGTERM, as the exit-status table says: a run that
    expected 0 failed every rss-dev-server row of a full bench run."""
    from bench.workloads.server import dev_server_rss

    ctx = Context(start_broker("peer"), tmp_path)
    try:
        sample = dev_server_rss(ctx, 30_000, 100)
    finally:
        ctx.broker.stop()
    assert sample.peak_rss_kib > 0


@pytest.mark.real_only("starts a second real nsqd from the binaries next to NSQCLI_TEST_NSQD")
def test_the_second_broker_of_a_real_run_is_a_real_nsqd_with_the_same_options(tmp_path):
    """lib-reader-few-rdy and the relays start a second broker; on --broker real it must be an
    nsqd of the same binary and --nsqd-option (it was 'no --nsq-bin' for lib-reader-few-rdy)."""
    from bench.brokers import find_nsq_bin

    nsq_bin = find_nsq_bin()
    options = {"mem_queue_size": 123}
    ctx = Context(start_broker("real", nsq_bin, options), tmp_path, nsq_bin=nsq_bin,
                  nsqd_options=options)
    try:
        second = ctx.second_broker()
        try:
            assert second.kind == "real" and second.tcp_address != ctx.broker.tcp_address
            for broker in (ctx.broker, second):
                assert broker.http("GET", "/config/mem_queue_size") == b"123"
        finally:
            second.stop()
    finally:
        ctx.broker.stop()
