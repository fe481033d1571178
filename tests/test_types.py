"""The annotations hold: the package ships ``py.typed``, so users' type checkers read them.

* ``mypy`` on the package (the files and per-module flags of ``[tool.mypy]`` in pyproject.toml:
  everything checked, nsqcli.lib with every ``--strict`` flag) reports nothing;
* ``mypy --strict nsqcli/lib`` reports nothing, and neither does it on ``tests/typing/user_program.py``
  (a program using the public API as users do);
* every misuse in ``tests/typing/rejected.py`` is reported (a line marked ``# rejected: <code>``
  gets an error with that code) and nothing else there is, so an annotation loosened to ``Any``
  fails here.

mypy runs in a subprocess (twice) with its cache in ``.mypy_cache`` (ignored by git): about 7 s
cold and 6 s warm here with mypy 2.4 (18 s with 1.19), up to 30 s on a loaded machine.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TYPING = Path(__file__).resolve().parent / "typing"
USER_PROGRAM = TYPING / "user_program.py"
REJECTED = TYPING / "rejected.py"

pytestmark = pytest.mark.timeout(600)

_ERROR = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+): error: (?P<message>.*?)(?:  \[(?P<code>[a-z-]+)\])?$",
                    re.MULTILINE)
_MARK = re.compile(r"#\s*rejected:\s*(?P<code>[a-z-]+)\s*$")


def _mypy(*args: str) -> tuple[int, str]:
    """``python -m mypy ARGS`` from the project root (which reads pyproject.toml's [tool.mypy])."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-color-output", "--no-error-summary", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=540)
    if done.returncode not in (0, 1):  # 2: mypy itself failed (bad option, crash)
        pytest.fail(f"mypy {' '.join(args)} failed to run (exit {done.returncode}):\n"
                    f"{done.stdout}{done.stderr}")
    return done.returncode, done.stdout


def _errors(output: str) -> list[tuple[str, int, str | None, str]]:
    """(path relative to the root, line, error code, message) of each error."""
    return [(Path(m["path"]).as_posix(), int(m["line"]), m["code"], m["message"])
            for m in _ERROR.finditer(output)]


@pytest.fixture(scope="module")
def strict_run() -> tuple[int, str]:
    """One strict run over the library and both typed programs (they share the analysis)."""
    return _mypy("--strict", "nsqcli/lib", str(USER_PROGRAM.relative_to(ROOT)),
                 str(REJECTED.relative_to(ROOT)))


def _in(path: str, errors: list[tuple[str, int, str | None, str]]) -> list[str]:
    return [f"{p}:{line}: [{code}] {message}" for p, line, code, message in errors
            if p == path or p.startswith(path.rstrip("/") + "/")]


def test_conn_kwargs_names_every_keyword_option_of_async_conn() -> None:
    # Reader(**kwargs) and Writer(**kwargs) are typed with ConnKwargs: it must follow AsyncConn
    from nsqcli.lib.conn import AsyncConn
    from nsqcli.lib.conn_options import ConnKwargs

    params = inspect.signature(AsyncConn.__init__).parameters
    assert list(ConnKwargs.__annotations__) == [name for name in params if name not in ("self", "host", "port")]


def test_the_package_checks_clean_with_the_project_config() -> None:
    status, output = _mypy()  # files and flags from [tool.mypy]: `mypy nsqcli`
    assert status == 0 and not _errors(output), output


def test_the_library_checks_clean_under_strict(strict_run: tuple[int, str]) -> None:
    errors = _errors(strict_run[1])
    assert _in("nsqcli", errors) == []


def test_a_typed_user_program_checks_clean_under_strict(strict_run: tuple[int, str]) -> None:
    errors = _errors(strict_run[1])
    assert _in("tests/typing/user_program.py", errors) == []


def test_misuses_are_rejected_and_nothing_else(strict_run: tuple[int, str]) -> None:
    expected = {}
    for number, text in enumerate(REJECTED.read_text().splitlines(), start=1):
        mark = _MARK.search(text)
        if mark:
            expected[number] = mark["code"]
    assert len(expected) >= 10  # the markers were read
    found: dict[int, set[str | None]] = {}
    for path, line, code, _ in _errors(strict_run[1]):
        if path == "tests/typing/rejected.py":
            found.setdefault(line, set()).add(code)
    missing = {line: code for line, code in expected.items() if code not in found.get(line, set())}
    unexpected = {line: codes for line, codes in found.items() if line not in expected}
    assert missing == {} and unexpected == {}, strict_run[1]
