"""The layers of the package only look down, its subpackages import each other in no cycle, and
neither do the modules inside one subpackage.

Every `import workbench.x` / `from workbench.x import ...` counts, at module
level or inside a function (a lazy import is still a dependency). Layers,
lowest first; a module may import its own subpackage, its layer or below:

    util      errors, numeric, redact, output, files, extras, scale, names, plugins (and the package root)
    store     SQLAlchemy models, engine, migrations runner, item sets
    ingest    readers, presets, validation, bulk load
    raters    backends and the rater configuration
    jobs      the runner: a job over a rater's items
    analysis  DuckDB snapshot, export, reports
    finetune  splits and fine-tuning runs
    study     the study file, plan and apply
    annotate  Label Studio campaigns of a loaded study
    cli       the Typer commands
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"
LAYERS = [
    {"__init__", "errors", "numeric", "redact", "output", "files", "extras", "scale", "names", "plugins"},
    {"store"},
    {"ingest"},
    {"raters"},
    {"jobs"},
    {"analysis"},
    {"finetune"},
    {"study"},
    {"annotate"},
    {"cli"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _part(module: str) -> str | None:
    """The subpackage (or top-level module) a `workbench.*` module name belongs to."""
    parts = module.split(".")
    if parts[0] != "workbench":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _is_part(name: str) -> bool:
    return (PACKAGE / name / "__init__.py").exists() or (PACKAGE / f"{name}.py").exists()


def imports() -> list[tuple[str, str, str, int]]:
    """(from part, to part, file, line) for every import of one workbench part by another."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        src = rel.parts[0] if len(rel.parts) > 1 else rel.parts[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module]
                if node.module == "workbench":  # from workbench import store / __version__
                    targets = [f"workbench.{a.name}" if _is_part(a.name) else "workbench" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{path}:{node.lineno}: relative import; write the absolute workbench.* name")
            for target in targets:
                dst = _part(target)
                if dst is not None and dst != src:
                    out.append((src, dst, str(path.relative_to(PACKAGE.parent)), node.lineno))
    return out


def test_every_part_has_a_layer():
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    parts |= {p.stem for p in PACKAGE.glob("*.py")}
    assert parts - set(LAYER) == set(), "new subpackages: give them a layer in this test and in README's layout"


def test_imports_only_look_down():
    upward = [
        f"{file}:{line}: {src} ({LAYER[src]}) imports {dst} ({LAYER[dst]})" for src, dst, file, line in imports() if LAYER[dst] > LAYER[src]
    ]
    assert upward == [], "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_cycle_among_subpackages():
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst, _file, _line in imports():
        graph[src].add(dst)
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend(path[path.index(nxt) :] + [node, nxt] if nxt in path else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*path, node]):
                return True
        state[node] = 2
        return False

    for node in sorted(graph):
        if state.get(node) is None and visit(node, []):
            break
    assert cycle == [], "a cycle among subpackages: " + " -> ".join(cycle)


def test_the_check_sees_real_edges():
    edges = {(src, dst) for src, dst, _f, _l in imports()}
    # a few edges the design has: the checks above would pass vacuously if this saw none
    assert {("cli", "study"), ("study", "store"), ("jobs", "raters"), ("raters", "store"), ("store", "errors")} <= edges


# --------------------------------------------------------------------------- modules inside one package


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports() -> dict[str, set[str]]:
    """module -> the workbench modules it imports (at module level, inside a function or for type checking).

    ``from workbench.raters.local import adapter`` imports the module ``workbench.raters.local.adapter``;
    ``from workbench.raters.config import ResolvedRater`` the module ``workbench.raters.config``.
    """
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}

    def module_of(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = {m for t in targets if t.split(".")[0] == "workbench" and (m := module_of(t)) not in (None, name)}
    return graph


def _package(module: str) -> str:
    """The subpackage a module belongs to (its first two parts): a cycle inside it is what the test forbids."""
    return ".".join(module.split(".")[:2])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other round a circle (Tarjan's strongly connected components
    of more than one module), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def _circle(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """One circle through the group's first module, for the message (breadth first: the shortest)."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    raise AssertionError(f"{group} is not a cycle")


def test_no_two_modules_of_a_package_import_each_other():
    graph = module_imports()
    inside = {m: {t for t in targets if _package(t) == _package(m)} for m, targets in graph.items()}
    found = cycles(inside)
    new = [" -> ".join(_circle(inside, group)) + f"  (all of {', '.join(group)})" for group in found]
    assert new == [], "modules of one package that import each other (lazily or not):\n" + "\n".join(new)


def test_the_cycle_check_finds_circles():
    # a pair, a longer circle, a lazy import counted like any other: the check above would pass vacuously otherwise
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set(), "x": {"y"}, "y": {"z"}, "z": {"x", "c"}}
    assert sorted(cycles(graph)) == [["a", "b"], ["x", "y", "z"]]
    assert _circle(graph, ["x", "y", "z"]) == ["x", "y", "z", "x"]
    modules = module_imports()
    assert "workbench.raters.local.files" in modules["workbench.raters.local.adapter"]  # a module-level import
    assert "workbench.raters.local.adapter" in modules["workbench.raters.local.backend"]  # one inside a function
    assert "workbench.raters.backend" in modules["workbench.raters.config"]
