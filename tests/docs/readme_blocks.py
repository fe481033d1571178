"""The fenced blocks of README.md, and the bash script that runs them in order as pasted.

A block is ```` ```sh ```` or ```` ```python ````. An HTML comment right before a block (blank lines
between are allowed) changes how it runs:

* ``<!-- not run: REASON -->`` — not run (an install step, a command needing binaries);
* ``<!-- stop: SIGINT once it printed N lines ... -->`` — a program that runs until Ctrl-C: it is
  started, and once its output has N lines it gets SIGINT and must exit 0.

Shell blocks run in one bash process, in order, so that what one block starts in the background
is there for the next, with ``set -e``: any command that fails fails the test, naming the README
line. Python blocks run as ``python3 FILE`` (the venv's, first on PATH).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python", "py": "python"}
_FENCE = re.compile(r"^```(\S*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*(not run|stop):\s*(.*?)\s*-->\s*$")
_STOP = re.compile(r"^SIGINT once it printed (\d+) lines\b")
#: How long a stop block may take to print its lines (a deadline, not a pause).
STOP_DEADLINE_SECONDS = 60
#: The marker after each block's output, to tell the blocks' output apart.
BLOCK_END = "@@README block from line {line} done"


@dataclass
class Block:
    language: str  # "sh" or "python"
    code: str
    line: int  # README line of the opening fence
    not_run: str | None = None  # the reason
    stop_after_lines: int | None = None


def parse(text: str) -> list[Block]:
    """Every fenced block of ``text``; ValueError for a block without a known language or a
    directive this harness does not know, so that nothing escapes the test silently."""
    blocks: list[Block] = []
    lines = text.splitlines()
    directive: tuple[str, str, int] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        match = _DIRECTIVE.match(line)
        fence = _FENCE.match(line)
        if match:
            directive = (match.group(1), match.group(2), index + 1)
        elif fence:
            language = LANGUAGES.get(fence.group(1))
            if language is None:
                raise ValueError(f"README line {index + 1}: a block needs a language "
                                 f"({', '.join(sorted(LANGUAGES))}), got {fence.group(1)!r}")
            end = next((j for j in range(index + 1, len(lines)) if lines[j].startswith("```")), None)
            if end is None:
                raise ValueError(f"README line {index + 1}: unclosed block")
            block = Block(language, "\n".join(lines[index + 1:end]) + "\n", index + 1)
            if directive is not None:
                _apply(block, *directive)
            blocks.append(block)
            directive = None
            index = end
        elif line.strip():
            directive = None  # a directive applies to the block right after it only
        index += 1
    return blocks


def _apply(block: Block, kind: str, argument: str, line: int) -> None:
    if kind == "not run":
        if not argument:
            raise ValueError(f"README line {line}: 'not run' needs a reason")
        block.not_run = argument
        return
    match = _STOP.match(argument)
    if match is None:
        raise ValueError(f"README line {line}: unknown stop directive {argument!r}")
    block.stop_after_lines = int(match.group(1))


def absolute_paths(block: Block) -> list[str]:
    """Absolute paths a shell block names (a pasted example must not need root or a fixed
    place: it works in the current directory)."""
    if block.language != "sh":
        return []
    words = []
    for line in block.code.splitlines():
        try:
            words += shlex.split(line, comments=True)
        except ValueError:
            words += line.split()
    return [word for word in words if word.startswith("/") and word != "/dev/null"]


def script(blocks: list[Block], workdir: Path, broker_line: str | None = None,
           preamble: str = "") -> str:
    """A bash script running the blocks to run, in order, in ``workdir``, after ``preamble``.

    A failing command is reported with its README line. ``broker_line`` replaces the line that
    starts ``nsqcli dev-server &`` (to run the README against real daemons).
    """
    blocks = [block for block in blocks if not block.not_run]
    out = preamble.splitlines() + [
        "set -eo pipefail",
        # README_OFFSET maps the script's $LINENO to the README's line in a shell block
        'trap \'echo "README line $((LINENO - README_OFFSET)): status $? from: $BASH_COMMAND" >&2\' ERR',
        *_WAIT_LINES.splitlines(),
        f"cd {shlex.quote(str(workdir))}",
    ]
    for block in blocks:
        if block.language == "sh":
            code = block.code
            if broker_line is not None:
                code = re.sub(r"^nsqcli dev-server &.*$", broker_line, code, flags=re.MULTILINE)
            first_line = len(out) + 2  # 1-based, after the README_OFFSET line
            out.append(f"README_OFFSET={first_line - (block.line + 1)}")
            out += code.rstrip("\n").splitlines()
        else:
            path = workdir.parent / f"readme_block_{block.line}.py"
            path.write_text(block.code, encoding="utf-8")
            out.append(f"README_OFFSET=$((LINENO + 1 - {block.line}))")
            out += _python(block, path).splitlines()
        out.append(f"echo {shlex.quote(BLOCK_END.format(line=block.line))}")
    return "\n".join(out) + "\n"


def _python(block: Block, path: Path) -> str:
    quoted = shlex.quote(str(path))
    if block.stop_after_lines is None:
        return f"python3 {quoted}"
    output = shlex.quote(str(path.with_suffix(".out")))
    # a terminal shows lines as they come: so does the pipe here (PYTHONUNBUFFERED)
    return "\n".join([
        f"PYTHONUNBUFFERED=1 python3 {quoted} > {output} &",
        "readme_pid=$!",
        f"readme_wait_lines {output} {block.stop_after_lines} $readme_pid",
        "kill -INT $readme_pid",
        "wait $readme_pid",
        f"cat {output}",
    ])


_WAIT_LINES = f"""readme_wait_lines() {{  # file, count, pid: poll until the file has count lines
    local deadline=$((SECONDS + {STOP_DEADLINE_SECONDS}))
    until [ "$(wc -l < "$1")" -ge "$2" ]; do
        if ! kill -0 "$3" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            echo "README line $README_LINE: no $2 lines of output (got $(wc -l < "$1"))" >&2
            cat "$1" >&2
            return 1
        fi
        sleep 0.05
    done
}}"""
