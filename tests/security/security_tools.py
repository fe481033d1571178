"""Run the installed tools as subprocesses and check their failures are one clean line."""

from __future__ import annotations

import os
import subprocess

from polling import VENV_BIN
_CLEARED_ENV = ("NSQD_TCP_ADDRESS", "NSQLOOKUPD_HTTP_ADDRESS", "NSQ_AUTH_SECRET")


class ToolResult:
    def __init__(self, args: list[str], proc: subprocess.CompletedProcess) -> None:
        self.args = args
        self.returncode = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "replace")
        self.stderr = proc.stderr.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return (f"{' '.join(self.args)}\nexit={self.returncode}\n--- stdout ---\n{self.stdout[:3000]}"
                f"\n--- stderr ---\n{self.stderr[:3000]}")


def run_tool(args: list[str], env: dict[str, str] | None = None, input: bytes | None = None,
             timeout: float = 30, cwd: str | None = None) -> ToolResult:
    """``args[0]`` is a console script of the venv (``nsq-tail``) or ``nsqcli``."""
    full_env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
    full_env.update(env or {})
    argv = [str(VENV_BIN / args[0]), *[str(a) for a in args[1:]]]
    proc = subprocess.run(argv, input=input if input is not None else b"", capture_output=True,
                          timeout=timeout, env=full_env, cwd=cwd)
    return ToolResult([str(a) for a in args], proc)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_one_line_error(result: ToolResult, expected: str = "") -> None:
    """stderr holds exactly one non-blank line (containing ``expected``) and no traceback."""
    assert "Traceback" not in result.stderr, result
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result
    assert expected in lines[0], result
