"""The layout holds (issue 16): no import cycle inside curate/, the core imports only the core (and `curate` for
its version), and no library package imports a command package (dependencies point commands -> library ->
core)."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "curate"
LIBRARY = ("filters", "sources", "tasks", "format", "download", "ledger", "mixture", "train", "inspect", "ocr",
           "clip", "demo")  # fmt: skip


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _graph() -> dict[str, set[str]]:
    """module -> curate modules it imports, at any depth in the file (function-level imports count too)."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {resolve(a.name) for a in node.names if a.name.startswith("curate")}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("curate") and not node.level:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(resolve(full) if full in modules else resolve(node.module))
        graph[name] = {t for t in targets if t and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_inside_curate():
    assert _cycles(_graph()) == []


def test_the_core_imports_only_the_core():
    graph = _graph()
    leaks = {m: sorted(t for t in ts if not t.startswith("curate.core") and t != "curate") for m, ts in graph.items()}
    leaks = {m: ts for m, ts in leaks.items() if m.startswith("curate.core") and ts}
    assert leaks == {}


def test_the_library_never_imports_a_command():
    graph = _graph()
    library = tuple(f"curate.{p}" for p in LIBRARY)
    upward = {m: sorted(t for t in ts if t.startswith("curate.commands")) for m, ts in graph.items()}
    assert {m: ts for m, ts in upward.items() if m.startswith(library) and ts} == {}


def test_the_cycle_check_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
