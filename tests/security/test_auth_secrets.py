"""AUTH secrets: taken from a flag, the environment or a file, and never shown anywhere — not in
-vv diagnostics, errors, --format json / jsonl output, written files, reprs, log records or
exception messages (of the library and every tool, on success and on failure). E_AUTH_FAILED and
E_UNAUTHORIZED are one clear line naming the topic.

(tests/broker/test_nsqd_auth.py covers the broker's side of AUTH; tests/cli/test_pub_tail_tls_auth.py
the secret sources of nsq-pub/nsq-tail.)
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
import traceback

import pytest
from auth_server import AuthServer
from security_tools import VENV_BIN, assert_one_line_error, error_lines, run_tool

from nsqcli.lib import AsyncConn, Reader, Writer

SECRET = "zq-SECRET-7f3a9c-never-print"
WRONG = "zq-WRONG-41d8e0-never-print"
ALLOWED, FORBIDDEN = "auth_ok", "auth_forbidden"
SECRETS = (SECRET, WRONG, SECRET.encode().hex(), WRONG.encode().hex())


@pytest.fixture(scope="module")
def auth_server():
    server = AuthServer(SECRET, topic_pattern=f"^{ALLOWED}$")
    yield server
    server.close()


@pytest.fixture
def auth_nsqd(nsqd_factory, auth_server):
    return nsqd_factory(auth_http_addresses=[auth_server.address])


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secrets" / "nsq-secret"
    path.parent.mkdir()
    path.write_text(SECRET + "\n")
    return path


def assert_no_secret(*texts: str, where: str = "") -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a secret leaked {where}:\n{text[:3000]}"


def assert_no_secret_in_files(folder, skip) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and path != skip:
            data = path.read_bytes().decode("utf-8", "replace")
            assert_no_secret(data, where=f"in {path}")


def check_run(result) -> None:
    assert_no_secret(result.stdout, result.stderr, where=f"in the output of {result.args[0]}")


# ---- the tools ------------------------------------------------------------------------------

def test_tools_authenticate_from_flag_env_and_file_without_showing_the_secret(
        auth_nsqd, auth_server, secret_file, tmp_path):
    address = ["--nsqd-tcp-address", auth_nsqd.tcp_address, "-vv"]
    pub = ["nsq-pub", "--topic", ALLOWED, *address]
    for extra, env in ((["--auth-secret", SECRET, "-m", "flag"], None),
                       (["-m", "env"], {"NSQ_AUTH_SECRET": SECRET}),
                       (["--auth-secret-file", secret_file, "-m", "file"], None)):
        result = run_tool([*pub, *extra], env=env)
        assert result.returncode == 0, result
        check_run(result)
    archive = tmp_path / f"{ALLOWED}.host.2026-01-01_00.log"
    archive.write_bytes(b"replayed\n")
    result = run_tool(["nsq-replay", *address, "--auth-secret-file", secret_file, "--checkpoint",
                       tmp_path / "checkpoint", archive])
    assert result.returncode == 0, result
    check_run(result)
    result = run_tool(["nsq-tail", "--topic", ALLOWED, "--channel", "c", "-n", "4", "--format", "json",
                       *address], env={"NSQ_AUTH_SECRET": SECRET})
    assert result.returncode == 0 and result.stdout.count("\n") == 4, result
    check_run(result)
    assert len(auth_server.queries) >= 5
    assert_no_secret_in_files(tmp_path, skip=secret_file)


def test_nsq_to_file_with_a_secret_writes_no_secret(auth_nsqd, secret_file, tmp_path):
    auth_nsqd.pub(ALLOWED, b"archived")
    out = tmp_path / "out"
    argv = [str(VENV_BIN / "nsq-to-file"), "--topic", ALLOWED, "--output-dir", str(out), "--format",
            "jsonl", "--auth-secret-file", str(secret_file), "-vv", "--nsqd-tcp-address",
            auth_nsqd.tcp_address]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not any(b"archived" in p.read_bytes() for p in out.glob("*") if p.is_file()):
            assert time.monotonic() < deadline and proc.poll() is None, "nothing archived"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    assert_no_secret(stdout.decode(), stderr.decode(), where="in nsq-to-file's output")
    assert_no_secret_in_files(tmp_path, skip=secret_file)


def tool_args(tool: str, topic: str, tmp_path) -> list[str]:
    if tool == "nsq-pub":
        return [tool, "--topic", topic, "-m", "x"]
    if tool == "nsq-tail":
        return [tool, "--topic", topic, "-n", "1"]
    if tool == "nsq-to-file":
        return [tool, "--topic", topic, "--output-dir", str(tmp_path / "out")]
    archive = tmp_path / f"{topic}.host.2026-01-01_00.log"
    archive.write_bytes(b"x\n")
    return [tool, "--topic", topic, archive]


TOOLS = ["nsq-pub", "nsq-tail", "nsq-to-file", "nsq-replay"]


@pytest.mark.parametrize("tool", TOOLS)
def test_a_wrong_secret_is_one_line_naming_the_topic(tool, auth_nsqd, tmp_path):
    result = run_tool([*tool_args(tool, ALLOWED, tmp_path), "--auth-secret", WRONG,
                       "--nsqd-tcp-address", auth_nsqd.tcp_address])
    assert result.returncode == 1, result
    assert_one_line_error(result, "E_AUTH_FAILED")
    assert ALLOWED in result.stderr, result
    check_run(result)


@pytest.mark.parametrize("tool", TOOLS)
def test_a_forbidden_topic_is_one_line_naming_the_topic(tool, auth_nsqd, tmp_path):
    result = run_tool([*tool_args(tool, FORBIDDEN, tmp_path), "--nsqd-tcp-address",
                       auth_nsqd.tcp_address], env={"NSQ_AUTH_SECRET": SECRET})
    assert result.returncode == 1, result
    lines = error_lines(result.stderr)
    assert "Traceback" not in result.stderr and "E_UNAUTHORIZED" in lines[0], result
    assert FORBIDDEN in lines[0], result
    # producers add their summary ("1 of 1 records were not acknowledged by nsqd")
    assert len(lines) == (2 if tool in ("nsq-pub", "nsq-replay") else 1), result
    check_run(result)
    assert auth_nsqd.topic_stats(FORBIDDEN) is None or auth_nsqd.topic_stats(FORBIDDEN)["message_count"] == 0


@pytest.mark.parametrize("tool", ["nsq-pub", "nsq-tail"])
def test_failures_in_debug_mode_show_no_secret(tool, auth_nsqd, tmp_path):
    for secret, topic in ((WRONG, ALLOWED), (SECRET, FORBIDDEN)):
        result = run_tool([*tool_args(tool, topic, tmp_path), "-vv", "--nsqd-tcp-address",
                           auth_nsqd.tcp_address], env={"NSQ_AUTH_SECRET": secret})
        assert result.returncode == 1, result
        check_run(result)


@pytest.mark.parametrize("tool", ["nsq-pub", "nsq-tail"])
def test_no_secret_for_an_auth_nsqd_is_one_clear_line(tool, auth_nsqd, tmp_path):
    result = run_tool([*tool_args(tool, ALLOWED, tmp_path), "--nsqd-tcp-address",
                       auth_nsqd.tcp_address])
    assert result.returncode == 1, result
    assert_one_line_error(result, "auth")


# ---- the library ----------------------------------------------------------------------------

def everything_about(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + repr(error.args)


def test_library_never_shows_the_secret(auth_nsqd, caplog):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async def main() -> None:
        for secret in (SECRET, WRONG):
            writer = Writer([auth_nsqd.tcp_address], auth_secret=secret, connect_timeout=0.5)
            seen.extend([repr(writer), str(writer)])
            for topic in (ALLOWED, FORBIDDEN):
                try:
                    await asyncio.wait_for(writer.pub(topic, b"lib"), 5)
                except Exception as exc:  # noqa: BLE001 - every failure is inspected
                    seen.append(everything_about(exc))
                    if topic == FORBIDDEN or secret == WRONG:
                        assert topic in str(exc) or "E_AUTH_FAILED" in str(exc), exc
            await writer.close()

            conn = AsyncConn(auth_nsqd.host, auth_nsqd.tcp_port, auth_secret=secret)
            seen.extend([repr(conn), str(conn), repr(conn._options)])  # noqa: SLF001
            try:
                await conn.wait_ready(3)
            except Exception as exc:  # noqa: BLE001
                seen.append(everything_about(exc))
            conn.close()

            reader = Reader(ALLOWED, "c", lambda message: True, auth_secret=secret,
                            nsqd_tcp_addresses=[auth_nsqd.tcp_address])
            seen.extend([repr(reader), str(reader)])
            await asyncio.sleep(0.3)
            seen.extend(repr(c) for c in reader.conns.values())
            await reader.close()

    asyncio.run(main())
    assert auth_nsqd.topic_stats(ALLOWED)["message_count"] == 1  # SECRET could publish
    assert_no_secret(*seen, where="in a repr or an exception")
    assert_no_secret(caplog.text, *(repr(r.args) for r in caplog.records), where="in the logs")


def test_dev_server_debug_log_shows_no_secret(auth_server):
    import re
    import sys

    argv = [sys.executable, "-m", "nsqcli.dev_server", "--tcp-address", "127.0.0.1:0",
            "--http-address", "127.0.0.1:0", "--no-lookupd", "--auth-http-address",
            auth_server.address, "-vv"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = ""
        deadline = time.monotonic() + 20
        while "Press Ctrl-C" not in banner:
            line = proc.stderr.readline()
            assert line and time.monotonic() < deadline, banner
            banner += line
        address = re.search(r"nsqd TCP\s+(\S+)", banner).group(1)
        for secret, topic in ((SECRET, ALLOWED), (WRONG, ALLOWED), (SECRET, FORBIDDEN)):
            result = run_tool(["nsq-pub", "--topic", topic, "-m", "x", "--nsqd-tcp-address", address],
                              env={"NSQ_AUTH_SECRET": secret})
            assert result.returncode == (0 if (secret, topic) == (SECRET, ALLOWED) else 1), result
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=15)
    assert_no_secret(banner, stdout, stderr, where="in dev-server's -vv output")
