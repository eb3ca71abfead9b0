"""The layers of the package only look down, and its subpackages import each other in no cycle.

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
