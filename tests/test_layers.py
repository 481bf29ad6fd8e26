"""The package's dependency direction is a rule: the import graph, read from the source with
``ast``, has no circle, no import from a lower layer to a higher one, no private name imported
across modules, and no function-local import without a stated reason.

Layers (``docs/design.md``), lowest first; a layer may import the ones listed for it:

=========  =====================================================================
base       ``fitting`` (root), ``fitting.units``, ``fitting.version``, ``fitting.atomic_io``
physics    base
stats      base
data       base, physics
overhead   base, physics, stats, data
estimator  base, physics, data, ``fitting.overhead.specs``, ``fitting.overhead.prediction``,
           ``fitting.stats.intervals``
report     everything; so do the CLIs, ``fitting.ingest`` and ``fitting.profile``
=========  =====================================================================

``fitting.overhead.specs`` (the spec formulas the estimator shares) may import only base,
physics and data, ``fitting.overhead.prediction`` (the one prediction path) only base and
``fitting.stats.intervals``, and ``fitting.stats.intervals`` only base, so that the
estimator never reaches the fitting code through them.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fitting"

BASE = {"fitting", "fitting.units", "fitting.version", "fitting.atomic_io"}
ALLOWED = {
    "base": {"base"},
    "physics": {"base", "physics"},
    "stats": {"base", "stats"},
    "data": {"base", "physics", "data"},
    "overhead": {"base", "physics", "stats", "data", "overhead"},
    "estimator": {"base", "physics", "data", "estimator"},
}
#: Single modules a layer may import beyond its allowed layers, and narrower rules for modules.
EXTRA_ALLOWED = {"estimator": {"fitting.overhead.specs", "fitting.overhead.prediction", "fitting.stats.intervals"}}
#: Narrower rules for single modules: layers, or single modules, they may import.
MODULE_RULES = {
    "fitting.overhead.specs": {"base", "physics", "data"},
    "fitting.overhead.prediction": {"base", "fitting.stats.intervals"},
    "fitting.stats.intervals": {"base"},
}
#: A function-local import must say why on its line or the line above.
LAZY_REASONS = ("lazy", "optional")


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    if module in BASE:
        return "base"
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in ALLOWED:
        return parts[1]
    return "top"  # report, the CLIs, ingest and profile


def read_imports(root: Path = PACKAGE):
    """``{module: [(imported module, names, lineno, function-local, line text, previous line)]}``."""
    modules = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph = {}
    for mod, path in modules.items():
        src = path.read_text(encoding="utf-8")
        lines = src.splitlines()
        tree = ast.parse(src, filename=str(path))
        local = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                local.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
        is_pkg = path.name == "__init__.py"
        edges = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [(a.name, ()) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = tuple(a.name for a in node.names)
                # "from pkg import submodule" is an import of the submodule
                subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
                targets = [(s, (s.rsplit(".", 1)[1],)) for s in subs]
                rest = tuple(n for n in names if f"{target}.{n}" not in modules)
                if rest or not subs:
                    targets.append((target, rest))
            else:
                continue
            for target, names in targets:
                if target != "fitting" and not target.startswith("fitting."):
                    if id(node) in local:
                        edges.append((None, names, node.lineno, True, lines[node.lineno - 1],
                                      lines[node.lineno - 2] if node.lineno > 1 else ""))
                    continue
                edges.append((target, names, node.lineno, id(node) in local, lines[node.lineno - 1],
                              lines[node.lineno - 2] if node.lineno > 1 else ""))
        graph[mod] = edges
    return graph


def layer_violations(graph) -> list[str]:
    out = []
    for mod, edges in graph.items():
        layer = layer_of(mod)
        allowed = MODULE_RULES.get(mod, ALLOWED.get(layer))
        if allowed is None:
            continue
        for target, _, line, _, _, _ in edges:
            if target is None or target == mod:
                continue
            if layer_of(target) in allowed or target in allowed:
                continue
            if mod not in MODULE_RULES and target in EXTRA_ALLOWED.get(layer, ()):
                continue
            out.append(f"{mod}:{line} ({layer}) imports {target} ({layer_of(target)})")
    return out


def import_cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    adj = {m: sorted({t for t, *_ in e if t in graph and t != m}) for m, e in graph.items()}
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj[v]:
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
                comps.append(sorted(comp))

    for v in sorted(adj):
        if v not in index:
            visit(v)
    return comps


def _package_only_edges(graph):
    """Edges from a package's ``__init__`` to its own submodules do not make circles:
    the package re-exports them and the submodules import each other, not the package."""
    out = {}
    for mod, edges in graph.items():
        out[mod] = [e for e in edges if not (e[0] is not None and e[0] == mod.rsplit(".", 1)[0]
                                             and layer_of(mod) != "base" and not e[1])]
    return out


def private_imports(graph) -> list[str]:
    out = []
    for mod, edges in graph.items():
        for target, names, line, _, _, _ in edges:
            if target is None:
                continue
            for n in names:
                if n.startswith("_") and not (n.startswith("__") and n.endswith("__")):
                    if f"{target}.{n}" in graph and target == mod.rsplit(".", 1)[0]:
                        continue  # a package-private module used inside its own package
                    out.append(f"{mod}:{line} imports private name {n} from {target}")
            private_parts = [p for p in target.split(".") if p.startswith("_") and not p.startswith("__")]
            if private_parts:
                owner = target.rsplit(".", 1)[0]
                if not mod.startswith(owner + ".") and mod != owner:
                    out.append(f"{mod}:{line} imports {target}, private to {owner}")
    return out


def unexplained_local_imports(graph) -> list[str]:
    out = []
    for mod, edges in graph.items():
        for target, names, line, local, text, prev in edges:
            if local and not any(r in (text + prev).lower() for r in LAZY_REASONS):
                out.append(f"{mod}:{line} function-local import of {target or names} without a reason "
                           f"(say 'lazy: ...' or 'optional dependency' on the line)")
    return out


GRAPH = read_imports()


def test_the_graph_covers_the_package():
    assert {"fitting.physics.memory", "fitting.stats.nls", "fitting.data.registry", "fitting.overhead.fit",
            "fitting.estimator.core", "fitting.report.validate", "fitting.refit"} <= set(GRAPH)
    assert ("fitting.stats.nls_core" in {t for t, *_ in GRAPH["fitting.stats.nls"]})


def test_no_import_circles():
    assert import_cycles(_package_only_edges(GRAPH)) == []


def test_layers_import_downwards_only():
    assert layer_violations(GRAPH) == []


def test_no_private_names_across_modules():
    assert private_imports(GRAPH) == []


def test_function_local_imports_say_why():
    assert unexplained_local_imports(GRAPH) == []


@pytest.fixture()
def package_copy(tmp_path):
    root = tmp_path / "fitting"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__", "*.yaml", "*.json"))
    return root


def test_an_upward_import_is_caught(package_copy):
    memory = package_copy / "physics" / "memory.py"
    memory.write_text(memory.read_text() + "\nfrom fitting.overhead.fit import fit_framework\n")
    found = layer_violations(read_imports(package_copy))
    assert any(v.startswith("fitting.physics.memory:") and "fitting.overhead.fit (overhead)" in v for v in found)


def test_the_estimator_reaching_the_fit_code_is_caught(package_copy):
    core = package_copy / "estimator" / "core.py"
    core.write_text(core.read_text() + "\nfrom fitting.overhead.observations import build_observations\n")
    found = layer_violations(read_imports(package_copy))
    assert any("fitting.estimator.core:" in v and "fitting.overhead.observations" in v for v in found)


def test_a_circle_is_caught(package_copy):
    core = package_copy / "stats" / "nls_core.py"
    core.write_text(core.read_text() + "\nfrom fitting.stats.nls import NLSModel\n")
    cycles = import_cycles(_package_only_edges(read_imports(package_copy)))
    assert any({"fitting.stats.nls", "fitting.stats.nls_core"} <= set(c) for c in cycles)


def test_a_private_import_and_an_unexplained_local_import_are_caught(package_copy):
    fit = package_copy / "overhead" / "fit.py"
    fit.write_text(fit.read_text() + "\nfrom fitting.stats.nls_core import _secret\n\n\ndef late():\n"
                   "    from fitting.stats import nls\n    return nls\n")
    g = read_imports(package_copy)
    assert any("private name _secret" in v for v in private_imports(g))
    assert any(v.startswith("fitting.overhead.fit:") for v in unexplained_local_imports(g))
