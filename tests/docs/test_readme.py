"""Every README example works pasted in order on a fresh machine (tests/docs/readme_blocks.py).

The blocks run in a temporary HOME and an empty working directory, with the tools of this venv
first on PATH. Where the kernel allows (root, or unprivileged user namespaces), they run in their
own network and process namespaces, so the dev-server gets ports 4150/4151/4160/4161 whatever
else runs on this machine and nothing outlives the test; as root the file system is read-only
there except the test's directory, so an example that needs root (writing /var/...) fails.
Without namespaces the test runs on the real ports if they are free, and is skipped otherwise.

With NSQCLI_TEST_NSQD and NSQCLI_TEST_NSQLOOKUPD, the README's ``nsqcli dev-server &`` line
starts those daemons instead (on the same ports), as the README says a user can.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from readme_blocks import BLOCK_END, absolute_paths, parse, script

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PORTS = (4150, 4151, 4160, 4161)  # the dev-server's defaults, which the quick start relies on
TIMEOUT = 90  # seconds; the README takes a few (pytest-timeout stops a test at 120)


def blocks():
    return parse(README.read_text(encoding="utf-8"))


def test_every_block_has_a_language_and_the_skipped_ones_say_why():
    found = blocks()
    assert found, "no blocks found in README.md"
    for block in found:  # only set-up and test-suite commands may be skipped, never an example
        if block.not_run:
            assert "pip install" in block.code or "pytest" in block.code, block


def test_pasted_examples_need_no_fixed_place():
    for block in blocks():
        if not block.not_run:
            assert absolute_paths(block) == [], f"README line {block.line}: use a relative path"


def _isolation() -> tuple[list[str], bool] | None:
    """(command prefix for new network + pid + mount namespaces, whether / can be read-only)."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip") or "/usr/sbin/ip"
    if unshare is None or not os.path.exists(ip):
        return None
    prefix = [unshare, "--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc"]
    root = os.geteuid() == 0
    if not root:
        prefix.insert(1, "--map-root-user")
    probe = subprocess.run([*prefix, ip, "link", "set", "lo", "up"], capture_output=True)
    return (prefix, root) if probe.returncode == 0 else None


def _ports_free() -> bool:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _preamble(tmp_path: Path, readonly: bool) -> str:
    ip = shlex.quote(shutil.which("ip") or "/usr/sbin/ip")
    lines = ["set -e", f"{ip} link set lo up"]
    if readonly:  # everything read-only but the test's directory
        here = shlex.quote(str(tmp_path))
        lines += ["mount --make-rprivate /", f"mount --bind {here} {here}", "mount --bind / /",
                  "mount -o remount,bind,ro /"]
    return "\n".join(lines) + "\nset +e\n"


def _broker_line(tmp_path: Path) -> str | None:
    """The real daemons in place of ``nsqcli dev-server &`` (one background job, as it is)."""
    nsqd, lookupd = os.environ.get("NSQCLI_TEST_NSQD"), os.environ.get("NSQCLI_TEST_NSQLOOKUPD")
    if not nsqd:
        return None
    if not lookupd:
        pytest.skip("the README uses nsqlookupd: set NSQCLI_TEST_NSQLOOKUPD too")
    data = tmp_path / "nsqd-data"
    data.mkdir()
    q = shlex.quote
    return (f"( {q(lookupd)} --tcp-address=127.0.0.1:4160 --http-address=127.0.0.1:4161 "
            f"> {q(str(tmp_path / 'nsqlookupd.log'))} 2>&1 & exec {q(nsqd)} "
            "--tcp-address=127.0.0.1:4150 --http-address=127.0.0.1:4151 "
            "--lookupd-tcp-address=127.0.0.1:4160 --broadcast-address=127.0.0.1 "
            f"--data-path={q(str(data))} > {q(str(tmp_path / 'nsqd.log'))} 2>&1 ) &")


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the script; after TIMEOUT seconds stop it and return what it printed (status None)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               start_new_session=True, stdin=subprocess.DEVNULL)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
        status = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        status = None
    finally:  # what the README left running in the background (the dev-server) ends here
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    return subprocess.CompletedProcess(command, status, stdout, stderr)


def _outputs(stdout: str) -> dict[int, list[str]]:
    """Each run block's output lines, by the README line of its fence."""
    found: dict[int, list[str]] = {}
    current: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("@@README block from line "):
            found[int(line.split()[4])] = current
            current = []
        else:
            current.append(line)
    return found


def test_the_readme_runs_pasted_in_order(tmp_path):
    isolation = _isolation()
    if isolation is None and not _ports_free():
        pytest.skip(f"no network namespace available and ports {PORTS} are taken")
    home, work, tmp = tmp_path / "home", tmp_path / "work", tmp_path / "tmp"
    for directory in (home, work, tmp):
        directory.mkdir()
    run_blocks = [block for block in blocks() if not block.not_run]
    preamble = _preamble(tmp_path, isolation[1]) if isolation else ""
    text = script(run_blocks, work, _broker_line(tmp_path), preamble)
    (tmp_path / "readme.sh").write_text(text, encoding="utf-8")
    env = {key: value for key, value in os.environ.items()
           if key not in ("NSQD_TCP_ADDRESS", "NSQLOOKUPD_HTTP_ADDRESS", "NSQ_AUTH_SECRET")}
    env.update(HOME=str(home), TMPDIR=str(tmp), PWD=str(work),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}")
    command = [*(isolation[0] if isolation else []), "bash", str(tmp_path / "readme.sh")]

    result = _run(command, env)
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, (f"status {result.returncode} (None: stopped after {TIMEOUT}s)\n"
                                    f"{stderr[-3000:]}\n--- stdout ---\n{stdout[-3000:]}")
    assert "Traceback" not in stderr, stderr
    outputs = _outputs(stdout)
    assert sorted(outputs) == [block.line for block in run_blocks], stdout

    quick_start = next(block for block in run_blocks if "nsq-tail" in block.code)
    printed = outputs[quick_start.line]
    json_lines = [json.loads(line) for line in printed if line.startswith("{")]
    assert [item["topic"] for item in json_lines] == ["events-replayed"] * 2, printed
    assert len([line for line in printed if line == "hello" or line.isdigit()]) == 10, printed
    for block in run_blocks:
        if block.stop_after_lines:
            assert len(outputs[block.line]) >= block.stop_after_lines, outputs[block.line]
        if "nsq.Publisher(\"events-bulk\"" in block.code:
            assert outputs[block.line] == ["10000 of 10000 records acknowledged"], outputs[block.line]
        if "nsq.Publisher(\"orders-copy\"" in block.code:
            assert outputs[block.line] == ["1000 relayed, 0 unanswered"], outputs[block.line]
        if "nsq-to-nsq --topic events" in block.code:  # the relay, then its drain's counts
            assert outputs[block.line] == [
                "nsqd 127.0.0.1:4151: created channel nsq_to_nsq of topic events",
                "1", "2", "3"], outputs[block.line]
            assert "nsq-to-nsq: relayed 3, filtered out 0, requeued 0" in stderr, stderr
        if "greetings" in block.code:
            assert sorted(outputs[block.line]) == sorted(
                ["b'hello'", "b'a'", "b'b'", "b'a second later'"]), outputs[block.line]
