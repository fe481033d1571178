"""What the tools say about peers and files that are not what the user meant (issue 13, item
7): an HTTP server where nsqd was expected, a PEM file that is not one, a port that accepts and
never answers -- one line each, naming the file or the stage, after the wait asked for."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from fake_nsqd import silent_listener
from polling import tool


def run(args, timeout=30):
    env = {k: v for k, v in os.environ.items() if k not in ("NSQD_TCP_ADDRESS", "NSQ_AUTH_SECRET")}
    started = time.monotonic()
    result = subprocess.run([str(a) for a in args], capture_output=True, timeout=timeout, env=env,
                            stdin=subprocess.DEVNULL)
    return result, time.monotonic() - started


def one_error_line(stderr: bytes) -> str:
    text = stderr.decode()
    assert "Traceback" not in text and "_ssl.c" not in text, text
    (line,) = text.splitlines()
    return line


@pytest.mark.parametrize("args", [
    ["nsq-pub", "--topic", "t", "-m", "x"],
    ["nsq-pub", "--topic", "t", "-m", "x", "--rate", "100"],  # the full engine
    ["nsq-tail", "--topic", "t"],
])
def test_an_http_server_is_not_an_nsqd(http_server, args):
    result, _ = run([tool(args[0]), *args[1:], "--nsqd-tcp-address", http_server])
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert "the peer is not an nsqd: it answered HTTP" in line, line
    assert "frame size" not in line


@pytest.fixture
def bad_pem(tmp_path):
    path = tmp_path / "client.pem"
    path.write_text("this is not a certificate\n")
    return path


@pytest.mark.parametrize("name, flags", [
    ("nsq-pub", ["--topic", "t", "-m", "x", "--tls-cert", "{pem}", "--tls-key", "{pem}"]),
    ("nsq-pub", ["--topic", "t", "-m", "x", "--tls-ca-file", "{pem}"]),
    ("nsq-tail", ["--topic", "t", "--tls-ca-file", "{pem}"]),
    ("nsq-to-file", ["--topic", "t", "--tls-cert", "{pem}", "--tls-key", "{pem}",
                     "--output-dir", "{tmp}"]),
])
def test_a_bad_pem_file_is_named(bad_pem, tmp_path, name, flags):
    args = [flag.format(pem=bad_pem, tmp=tmp_path / "out") for flag in flags]
    # nothing listens there: the file is refused before any connection
    result, _ = run([tool(name), *args, "--nsqd-tcp-address", "127.0.0.1:1"])
    assert result.returncode == 2, result.stderr  # a bad file given as a flag: usage
    line = one_error_line(result.stderr)
    assert "cannot load the TLS " in line and str(bad_pem) in line, line


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (a service that is not nsqd)."""
    with silent_listener() as address:
        yield address


@pytest.mark.parametrize("extra", [[], ["--rate", "100"]])
def test_a_port_that_never_answers_times_out_after_the_timeout_asked_for(silent_port, extra):
    result, elapsed = run([tool("nsq-pub"), "--topic", "t", "-m", "x", *extra,
                           "--nsqd-tcp-address", silent_port])
    assert result.returncode == 1, result.stderr
    assert one_error_line(result.stderr) == (
        f"nsq-pub: error: timed out after 1s during IDENTIFY to {silent_port}")
    # one 1 s stage, plus start-up: not 5 s of a first attempt and 1 s of a second
    assert elapsed < 3.5, elapsed
