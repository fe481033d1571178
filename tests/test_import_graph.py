"""The runtime imports of nsqcli form no cycle, and the layers point one way (GUIDE: the protocol
core imports no I/O, the library imports no CLI and no broker).

The graph is read from the source with ``ast``: every ``import``/``from ... import`` that runs,
at module level or inside a function (a lazy import is still a runtime arrow); imports under
``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "nsqcli"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in ROOT.rglob("*.py")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The nsqcli modules that ``name`` imports at run time."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            targets.add(submodule if submodule in known else source)
    return {target for target in targets if target in known and target != name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for target in sorted(graph[node]):
            if colour[target] == GREY:
                return stack[stack.index(target):] + [target]
            if colour[target] == WHITE:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_is_read_from_the_package():
    graph = import_graph()
    assert "nsqcli.lib.reader" in graph
    assert "nsqcli.lib.protocol.client" in graph["nsqcli.lib.conn"]


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_type_checking_imports_are_not_arrows():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\n"
                     "else:\n    import y\ndef f():\n    import z\n")
    names = {alias.name for node in _runtime_imports(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    assert names == {"y", "z"}


def test_runtime_imports_have_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "runtime import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("layer, forbidden", [
    ("nsqcli.lib", ("nsqcli.cli", "nsqcli.publisher", "nsqcli.broker", "nsqcli.tail", "nsqcli.pub", "nsqcli.to_file",
                    "nsqcli.replay", "nsqcli.archive", "nsqcli.dev_server", "nsqcli.testing",
                    "nsqcli.admin")),
    ("nsqcli.archive", ("nsqcli.broker", "nsqcli.tail", "nsqcli.pub", "nsqcli.to_file",
                        "nsqcli.replay", "nsqcli.admin")),
    ("nsqcli.cli", ("nsqcli.broker", "nsqcli.tail", "nsqcli.pub", "nsqcli.to_file",
                    "nsqcli.replay", "nsqcli.admin")),
    ("nsqcli.admin", ("nsqcli.broker", "nsqcli.tail", "nsqcli.pub", "nsqcli.to_file",
                      "nsqcli.replay", "nsqcli.archive", "nsqcli.publisher")),
])
def test_layers_point_one_way(layer, forbidden):
    wrong = sorted(f"{name} -> {target}" for name, targets in import_graph().items()
                   if name == layer or name.startswith(layer + ".")
                   for target in targets if target.startswith(forbidden))
    assert not wrong, "\n".join(wrong)
