"""The shape of the code (issue #18): no import cycles between modules, and the core
(``asr``, ``summarize``, ``hardware``) never imports a front end, the benchmark scripts or
Qt. The import graph is built by grimp (import-linter's engine) from the source, with the
imports inside functions, so a lazy import that hides a loop is found too."""

from __future__ import annotations

from collections.abc import Iterable

import grimp
import pytest

PACKAGES = ("app", "asr", "summarize", "hardware", "benchmarks")
CORE = ("asr", "summarize", "hardware")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=True, cache_dir=None)


def _cycles(graph: grimp.ImportGraph, modules: Iterable[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    nodes = sorted(modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & set(nodes)) for m in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            for k in range(i, len(edges[v])):
                w = edges[v][k]
                if w not in index:
                    work.append((v, k + 1))
                    work.append((w, 0))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[v])
    return out


def _ours(graph: grimp.ImportGraph) -> set[str]:
    return {m for m in graph.modules if m.split(".")[0] in PACKAGES}


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    # a package's __init__ re-exporting its modules is no loop of responsibilities
    modules = {m for m in _ours(graph) if not graph.find_children(m)}
    assert _cycles(graph, modules) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    g = grimp.ImportGraph()
    for m in ("p.a", "p.b", "p.c", "p.d"):
        g.add_module(m)
    g.add_import(importer="p.a", imported="p.b")
    g.add_import(importer="p.b", imported="p.c")
    g.add_import(importer="p.c", imported="p.a")
    g.add_import(importer="p.c", imported="p.d")
    assert _cycles(g, ["p.a", "p.b", "p.c", "p.d"]) == [["p.a", "p.b", "p.c"]]


def test_the_core_imports_no_front_end_no_benchmark_and_no_qt(graph: grimp.ImportGraph) -> None:
    wrong = sorted(
        (m, imported)
        for m in _ours(graph) if m.split(".")[0] in CORE
        for imported in graph.find_modules_directly_imported_by(m)
        if imported.split(".")[0] in ("app", "benchmarks", "PySide6", "shiboken6")
    )
    assert wrong == []


def test_front_ends_import_no_private_names_of_each_other(graph: grimp.ImportGraph) -> None:
    """``from app.cli import _engine_config`` was how the desktop app reached the CLI's
    wiring; shared helpers are public names of ``app.common``."""
    wrong = []
    for m in _ours(graph):
        if not m.startswith("app"):
            continue
        for imported in graph.find_modules_directly_imported_by(m):
            if not imported.startswith("app"):
                continue
            for detail in graph.get_import_details(importer=m, imported=imported):
                line = detail["line_contents"]
                if " import _" in line or ", _" in line:
                    wrong.append((m, line))
    assert wrong == []
