"""The confirmation asked before ``delete`` and ``empty``, which destroy messages: only on a
terminal (without one, the command refuses unless ``--yes`` says so, rather than hang or go on)."""

from __future__ import annotations

import sys
from typing import IO


def stdin_is_terminal() -> bool:
    stdin = sys.stdin
    try:
        return stdin is not None and stdin.isatty()
    except (ValueError, OSError):  # closed
        return False


def ask(question: str, err: IO[str]) -> bool:
    """``question`` on stderr, the answer from stdin: True only for y or yes (end of input: no)."""
    err.write(question)
    err.flush()
    answer = sys.stdin.readline()
    if not answer.endswith("\n"):
        err.write("\n")  # end of input: the next line starts on a line of its own
    return answer.strip().lower() in ("y", "yes")
