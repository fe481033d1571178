"""Every ``embedded_only`` / ``real_only`` marker in the suite says why the other broker mode
cannot apply (issue 12: a test runs in both modes unless a one-line reason says otherwise)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
MODE_MARKERS = {"embedded_only", "real_only"}


def unexplained_markers(source: str) -> list[int]:
    """Line numbers of mode markers used without a reason string."""
    explained: set[int] = set()  # id() of the marker attributes a call gives a reason
    nodes = list(ast.walk(ast.parse(source)))
    for node in nodes:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in MODE_MARKERS:
            given = node.args[:1] or [kw.value for kw in node.keywords if kw.arg == "reason"]
            if given and isinstance(given[0], ast.Constant) and str(given[0].value).strip():
                explained.add(id(node.func))
    return sorted(node.lineno for node in nodes if isinstance(node, ast.Attribute)
                  and node.attr in MODE_MARKERS and id(node) not in explained)


def test_a_bare_marker_is_found_and_a_reasoned_one_is_not():
    source = ("import pytest\n@pytest.mark.embedded_only\ndef test_a(): pass\n"
              "@pytest.mark.real_only('Go apps next to nsqd')\ndef test_b(): pass\n"
              "pytestmark = pytest.mark.embedded_only('')\n")
    assert unexplained_markers(source) == [2, 6]


def test_every_mode_marker_of_the_suite_gives_its_reason():
    found = {f"{path.relative_to(TESTS)}:{line}"
             for path in TESTS.rglob("*.py") if path.name != "test_markers.py"
             for line in unexplained_markers(path.read_text(encoding="utf-8"))}
    # tests/broker/test_fixtures.py writes bare markers into a generated test file (a string)
    assert not found, sorted(found)
