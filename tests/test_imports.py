"""No import cycle between the project's modules, function-level imports included.

A small AST walker: every ``import`` / ``from ... import`` statement of ``bench``, ``methods`` and
``metrics`` (at module level or inside a function) is an edge to the module it loads; imports
under ``if TYPE_CHECKING:`` are left out (they never run). Strongly connected components of
more than one module are cycles.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "methods", "metrics")


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def imports(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports, anywhere in its body."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_walker_sees_function_level_imports_and_cycles(tmp_path):
    (tmp_path / "a.py").write_text("def f():\n    from b import x\n")
    (tmp_path / "b.py").write_text("import a\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import c\n")
    known = {"a", "b", "c"}
    g = {m: imports(m, tmp_path / f"{m}.py", known) for m in ("a", "b")} | {"c": set()}
    assert g == {"a": {"b"}, "b": {"a"}, "c": set()}
    assert cycles(g) == [["a", "b"]]


#: the layers below the planner: they read the typed plan (run, loading, postprocess, models),
#: never the Suite it was resolved from
BELOW_THE_PLANNER = ("bench/pipeline/runtime.py", "bench/pipeline/shard.py", "bench/pipeline/cell.py",
                     "bench/pipeline/cells.py", "bench/pipeline/services.py", "bench/pipeline/gallery.py",
                     "bench/pipeline/memo.py", "bench/pipeline/executors", "bench/models", "bench/data", "bench/store",
                     "bench/explain.py")


def test_below_the_planner_nothing_reads_the_suite():
    found = []
    for rel in BELOW_THE_PLANNER:
        path = ROOT / rel
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            tree = ast.parse(f.read_text())
            found += [f"{f.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(tree)
                      if (isinstance(n, ast.Attribute) and n.attr == "suite")
                      or (isinstance(n, ast.Name) and n.id == "Suite")
                      or (isinstance(n, ast.ImportFrom) and n.module == "bench.suite")]
    assert not found, found
