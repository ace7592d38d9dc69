"""The package's imports run one way: no cycle between its modules, and the foundation never imports the pipeline above it.

Imports under ``if TYPE_CHECKING:`` are left out (they never run), and so is ``ganeval/__init__.py``, whose lazy
``__getattr__`` hands out the public API.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import ganeval

ROOT = Path(ganeval.__file__).parent

# Lowest layer: data, metrics, models and small utilities; they import only each other.
FOUNDATION = ("ganeval.data", "ganeval.metrics", "ganeval.models", "ganeval.cache", "ganeval.ranking", "ganeval.errors",
              "ganeval.atomic", "ganeval.interrupts", "ganeval.locks")
# What sits above them in the pipeline (features, evaluation, reports, gate, CLI).
PIPELINE = ("ganeval.cli", "ganeval.evaluate", "ganeval.gating", "ganeval.comparing", "ganeval.watching", "ganeval.report",
            "ganeval.features", "ganeval.stats", "ganeval.sampling", "ganeval.train", "ganeval.checkpoints")


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        if name == "ganeval":
            continue
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                # ``from pkg import sub`` imports the submodule where one exists, else names of the package itself.
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module for a in node.names]
            graph[name].update(t for t in targets if t in mods and t != name and t != "ganeval")
    return graph


def _top(name: str) -> str:
    return ".".join(name.split(".")[:2])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_no_import_cycle_between_modules() -> None:
    graph = _graph()
    assert len(graph) > 50  # the walk saw the package
    assert _cycles(graph) == []


def test_no_import_cycle_between_top_level_modules_and_packages() -> None:
    top: dict[str, set[str]] = defaultdict(set)
    for a, targets in _graph().items():
        top[_top(a)].update(_top(b) for b in targets if _top(b) != _top(a))
    assert _cycles(top) == []


def test_foundation_imports_nothing_of_the_pipeline_above_it() -> None:
    wrong = sorted(
        f"{a} -> {b}"
        for a, targets in _graph().items() if a.startswith(FOUNDATION)
        for b in targets if b.startswith(PIPELINE))
    assert wrong == []


def test_the_checker_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
