"""The import graph of dlref has no cycle (tests/test_docs.py checks that nothing in the
repository points outside it).

Imports are read with ``ast`` (no module is imported), function-level imports included: a
function-level import that closes a cycle is still a cycle (it only defers the failure to the
first call). ``kernels/X.py`` ships as ``dlref.kernels.X``.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _module_files() -> dict[str, pathlib.Path]:
    """Every module of the distribution: its dotted name -> its file."""
    out = {}
    for top, package in ((ROOT / "dlref", "dlref"), (ROOT / "kernels", "dlref.kernels")):
        for path in sorted(top.rglob("*.py")):
            parts = list(path.relative_to(top).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


def _imports(name: str, source: str, is_package: bool, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that module ``name`` (its ``source``) imports anywhere.

    ``import a.b.c`` and ``from a.b import c`` name the most specific module that exists
    (``from dlref import augment`` is ``dlref.augment``; ``from dlref import conv``, a name
    re-exported by the package, is ``dlref`` itself). Parent packages are not counted: Python
    runs ``dlref/__init__.py`` first either way, and that is not a cycle of this module.
    """
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
                break
    return found


def import_graph() -> dict[str, set[str]]:
    files = _module_files()
    return {
        name: _imports(name, path.read_text(), path.name == "__init__.py", set(files))
        for name, path in files.items()
    }


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``a -> b -> ... -> a``) per strongly connected component with more than one
    module (Tarjan's algorithm; iterative, so deep graphs do not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(set(component))
    return [_cycle_in(component, graph) for component in components]


def _cycle_in(component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the first member of ``component`` (breadth-first)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {component}")  # Tarjan guarantees one


def test_the_graph_is_read():
    graph = import_graph()
    assert "dlref.kernels.im2col" in graph and "dlref.augment" in graph
    assert "dlref._checks" in graph["dlref.kernels.im2col"]  # `from dlref import _checks`
    assert "dlref.convolution" in graph["dlref.nn"]


def test_find_cycles_reports_a_function_level_cycle():
    # the shape of the known kernels/tuning <-> pallas_igemm cycle: one side imports inside a
    # function; and a three-module ring
    def parse(files):
        return {n: _imports(n, src, False, set(files)) for n, src in files.items()}

    graph = parse(
        {
            "p.a": "import p.b\n",
            "p.b": "def f():\n    from p import a\n",
            "p.c": "from p.d import x\n",
            "p.d": "from . import e\n",
            "p.e": "import p.c\n",
            "p.f": "import p.a\n",
        }
    )
    assert sorted(find_cycles(graph)) == [["p.a", "p.b", "p.a"], ["p.c", "p.d", "p.e", "p.c"]]


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (a function-level import counts):\n" + "\n".join(
        " -> ".join(c) for c in cycles
    )
