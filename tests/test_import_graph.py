"""madbench's import graph, function-local imports counted: no cycle, no lower layer importing a higher one.

    .venv/bin/python -m pytest -q tests/test_import_graph.py

The layers are the ones ARCHITECTURE.md draws ("Layers"), lowest first. Imports under
``if TYPE_CHECKING:`` are not counted (they never run). What still breaks the rules is listed by
name in KNOWN_CYCLES / KNOWN_UPWARD with the reason; the test also fails when a listed entry is
gone, so the lists only shrink.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import madbench

PACKAGE = Path(madbench.__file__).parent

# lowest first; a module's layer is its longest matching prefix
LAYERS = [
    # download (the asset list and its pip verb) and the sampling-backend registry import only base modules
    ("base", ("madbench.errors", "madbench.registry", "madbench.quiet", "madbench.headline", "madbench.results.fileio", "madbench.results.untrusted", "madbench.processor",
              "madbench.download", "madbench.generation.backends")),
    ("config", ("madbench.config",)),
    ("data", ("madbench.data",)),
    ("store", ("madbench.results",)),
    ("models", ("madbench.models",)),
    ("training", ("madbench.training",)),
    ("generation", ("madbench.generation",)),
    ("metrics", ("madbench.metrics", "madbench.hf_metrics")),
    ("evaluation", ("madbench.evaluation",)),
    ("mitigations", ("madbench.mitigations",)),
    ("loop", ("madbench.loop",)),
    ("collect", ("madbench.results.collect", "madbench.results.environment")),
    ("monitoring", ("madbench.monitoring",)),
    ("reporting", ("madbench.reporting",)),
    ("checks", ("madbench.config.validation", "madbench.config.preflight", "madbench.config.tracks", "madbench.plugins",
                "madbench.plugin_contracts")),
    ("run", ("madbench.run", "madbench.run_folder")),
    ("experiments", ("madbench.experiments",)),
    ("leaderboard", ("madbench.leaderboard",)),
    ("entry", ("madbench", "madbench.cli", "madbench.api", "madbench.listing", "madbench.__main__")),
]

# still there, with why; remove an entry when its import goes
KNOWN_UPWARD = {
    # build_config validates every config it builds, and validation checks names against every registry
    ("madbench.config.run_config", "madbench.config.validation"),
    # a config file's `plugins:` key is loaded while the config is built
    ("madbench.config.run_config", "madbench.plugins"),
    # the tiny model is pretrained with the training loop's packing
    ("madbench.models.tiny", "madbench.training.packing"),
}
KNOWN_CYCLES = {
    # build_config validates what it builds (the KNOWN_UPWARD edge) and validation reads the config's types back
    frozenset({"madbench.config.run_config", "madbench.config.validation"}),
    # registry.discover() imports a package's modules so they register (no static edge any more); what is left
    # are modules that import their package's __init__ for shared names (METRICS / MetricContext, Mitigation)
    frozenset({"madbench.metrics", "madbench.metrics.intervals", "madbench.metrics.semantic", "madbench.metrics.shift"}),
    frozenset({"madbench.mitigations", "madbench.mitigations.mixing"}),
}


def module_names() -> dict:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test)


def imports(path: Path, modules: dict):
    """(target module, inside a function?) for every madbench import of a file."""
    found = []

    def visit(node, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [f"{child.module}.{a.name}" for a in child.names]
            else:
                names = []
            for name in names:
                while name and name not in modules:  # 'madbench.loop.regimes.REGIMES' -> the module
                    name = name.rpartition(".")[0]
                if name:
                    found.append((name, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text()), False)
    return found


def graph() -> dict:
    modules = module_names()
    edges = defaultdict(set)
    for name, path in modules.items():
        for target, _ in imports(path, modules):
            if target != name:
                edges[name].add(target)
    return {m: edges.get(m, set()) for m in modules}


def layer_of(module: str) -> int:
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), i
    assert index is not None, f"{module} has no layer: add it to LAYERS (and ARCHITECTURE.md)"
    return index


def cycles(edges: dict) -> list:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(frozenset(component))
    return out


def test_cycle_finder_and_layers_see_what_they_should():
    # the checks themselves can fail: a planted cycle is found, a planted upward import is seen
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert layer_of("madbench.results.collect") > layer_of("madbench.loop.runner") > layer_of("madbench.results.run_store")
    modules = module_names()
    found = imports(PACKAGE / "run.py", modules)
    assert ("madbench.results.run_store", False) in found and ("madbench.loop.runner", True) in found


def test_no_import_cycle_beyond_the_known_ones():
    found = set(cycles(graph()))
    assert found - KNOWN_CYCLES == set(), f"new import cycle(s): {[sorted(c) for c in found - KNOWN_CYCLES]}"
    assert KNOWN_CYCLES - found == set(), f"gone (remove from KNOWN_CYCLES): {[sorted(c) for c in KNOWN_CYCLES - found]}"


def test_no_lower_layer_imports_a_higher_one():
    upward = {(a, b) for a, targets in graph().items() for b in targets if layer_of(b) > layer_of(a)}
    assert upward - KNOWN_UPWARD == set(), "a lower layer imports a higher one: " + ", ".join(
        f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})" for a, b in sorted(upward - KNOWN_UPWARD))
    assert KNOWN_UPWARD - upward == set(), f"gone (remove from KNOWN_UPWARD): {sorted(KNOWN_UPWARD - upward)}"
