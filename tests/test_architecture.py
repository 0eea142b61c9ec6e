"""The import direction of ARCHITECTURE.md, proved by walking the package's imports with ``ast``.

Every ``import``/``from ... import`` anywhere in a module (top level or inside a function: a
lazy import is still a dependency) is an edge. The rules:

* ``jaxlm.core`` imports nothing of ours but itself;
* ``jaxlm.reduce`` imports only ``core``;
* ``jaxlm.io`` imports only ``core`` and itself: no model, no estimator, no CLI;
* nothing outside ``jaxlm.cli`` imports ``jaxlm.cli`` (but ``jaxlm.__main__``, which is
  ``python -m jaxlm``: the CLI's entry point like the console script);
* there is no import cycle anywhere in the package (between modules; a package's
  ``__init__`` importing its own submodules is not a cycle unless they import it back).
"""
import ast
from pathlib import Path

import jaxlm

ROOT = Path(jaxlm.__file__).resolve().parent
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _resolve(module: str, level: int, here: str) -> str:
    if level == 0:
        return module
    base = here.split(".") if _is_package(here) else here.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mod = _resolve(node.module or "", node.level, name)
                for a in node.names:
                    sub = f"{mod}.{a.name}"
                    targets.append(sub if sub in MODULES else mod)
            for t in targets:
                if t == "jaxlm" or t.startswith("jaxlm."):
                    # importing a.b.c runs a, a.b and a.b.c; the dependency that matters is the deepest module
                    while t not in MODULES and "." in t:
                        t = t.rsplit(".", 1)[0]
                    if t != name:
                        graph[name].add(t)
    return graph


GRAPH = _edges()


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(package: str, allowed: tuple[str, ...]) -> list[str]:
    bad = []
    for m, deps in GRAPH.items():
        if not _in(m, package):
            continue
        for t in deps:
            if t == "jaxlm" or not any(_in(t, a) for a in allowed):
                bad.append(f"{m} -> {t}")
    return sorted(bad)


def test_core_imports_only_core():
    assert _violations("jaxlm.core", ("jaxlm.core",)) == []


def test_reduce_imports_only_core():
    assert _violations("jaxlm.reduce", ("jaxlm.reduce", "jaxlm.core")) == []


def test_io_knows_no_model_estimator_or_cli():
    assert _violations("jaxlm.io", ("jaxlm.io", "jaxlm.core")) == []


def test_nothing_imports_the_cli():
    bad = sorted(f"{m} -> {t}" for m, deps in GRAPH.items() if not _in(m, "jaxlm.cli") and m != "jaxlm.__main__"
                 for t in deps if _in(t, "jaxlm.cli"))
    assert bad == []


def test_no_import_cycle():
    """Tarjan's strongly connected components: every component must be a single module."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in GRAPH:
                continue
            if w not in index:
                visit(w)
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
            comps.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert [c for c in comps if len(c) > 1] == []


def test_the_walk_sees_lazy_imports():
    """The checker itself: a function-level import is an edge (the estimator's lazy import of the
    model-file writer, for instance), so the rules above are not vacuous."""
    assert any(GRAPH.values())
    assert "jaxlm.core.state" in GRAPH["jaxlm.core.exact"]


def test_no_source_file_over_the_limit():
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
