"""Command lines written for the Go apps run with the name swapped (to_nsq -> nsq-pub,
nsq_tail -> nsq-tail, nsq_to_file -> nsq-to-file), as real processes against the nsqd fixture;
and, when the Go apps are at hand, the same argv gives the same result from both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from channels import ChannelSettled
from polling import tool, wait_for


def test_a_go_style_pipeline_runs_unchanged(nsqd, run_tool, tmp_path):
    nsqd.create_topic("go")
    nsqd.create_channel("go", "tail")
    nsqd.create_channel("go", "archive")
    published = run_tool([tool("nsq-pub"), "-topic", "go", "-nsqd-tcp-address", nsqd.tcp_address,
                          "-rate", "0", "-delimiter", ",", "-producer-opt", "dial_timeout,2s"],
                         input=b"a,b,c,")
    assert published.returncode == 0, published.stderr
    tailed = run_tool([tool("nsq-tail"), "-topic=go", "-channel", "tail", "-n=3", "-print-topic",
                       "-max-in-flight=10", f"-nsqd-tcp-address={nsqd.tcp_address}",
                       "-consumer-opt", "max_attempts,5"])
    assert tailed.returncode == 0, tailed.stderr
    assert sorted(tailed.stdout.splitlines()) == [b"go | a", b"go | b", b"go | c"]

    out = tmp_path / "out"
    archiver = subprocess.Popen(
        [tool("nsq-to-file"), "-topic", "go", "-channel=archive", "-output-dir", str(out),
         "-nsqd-tcp-address", nsqd.tcp_address, "-gzip=false", "-sync-interval", "0m1s",
         "-filename-format", "<TOPIC>.log", "-log-level", "warn",
         "-http-client-connect-timeout", "2s", "-skip-empty-files=true"],
        stderr=subprocess.PIPE)
    try:
        assert wait_for(ChannelSettled(nsqd, "go", "archive", expected=0), 30)
    finally:
        archiver.send_signal(signal.SIGINT)
        _, stderr = archiver.communicate(timeout=30)
    assert archiver.returncode == 130, stderr
    assert stderr == b""  # -log-level warn: nothing to say
    assert sorted((out / "go.log").read_bytes().splitlines()) == [b"a", b"b", b"c"]


def test_the_quick_publish_path_takes_go_syntax(nsqd, run_tool):
    """``nsq-pub -topic t -m x`` is published before click is imported, like --topic."""
    result = run_tool([sys.executable, "-X", "importtime", tool("nsq-pub"), "-topic=quick", "-m=x",
                       "-nsqd-tcp-address", nsqd.tcp_address])
    assert result.returncode == 0, result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.decode().splitlines()
                if line.startswith("import time:")}
    assert "click" not in imported
    assert nsqd.topic_stats("quick")["message_count"] == 1


def _go_app(name: str) -> str:
    nsqd = os.environ.get("NSQCLI_TEST_NSQD")
    binary = Path(nsqd).with_name(name) if nsqd else None
    if binary is None or not binary.exists():
        pytest.skip(f"{name} is looked for next to NSQCLI_TEST_NSQD")
    return str(binary)


def test_the_same_argv_to_the_go_apps_and_ours_gives_the_same_result(nsqd, run_tool):
    to_nsq, nsq_tail = _go_app("to_nsq"), _go_app("nsq_tail")
    nsqd.create_topic("parity")
    for channel in ("go", "ours"):
        nsqd.create_channel("parity", channel)
    publish = ["-topic", "parity", "-nsqd-tcp-address", nsqd.tcp_address, "-rate", "0",
               "-delimiter", ",", "-producer-opt", "dial_timeout,2s"]
    for program in (to_nsq, tool("nsq-pub")):
        result = run_tool([program, *publish], input=b"a,b,c,")
        assert result.returncode == 0, (program, result.stderr)
    assert nsqd.topic_stats("parity")["message_count"] == 6
    printed = {}
    for program, channel in ((nsq_tail, "go"), (tool("nsq-tail"), "ours")):
        result = run_tool([program, "-topic=parity", "-channel", channel, "-n=6", "-print-topic",
                           f"-nsqd-tcp-address={nsqd.tcp_address}", "-max-in-flight", "10"])
        assert result.returncode == 0, (program, result.stderr)
        printed[channel] = sorted(result.stdout.splitlines())
    assert printed["ours"] == printed["go"] == sorted([b"parity | a", b"parity | b",
                                                      b"parity | c"] * 2)
