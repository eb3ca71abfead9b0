"""plan and apply: make the store match the study file, doing only what is missing.

The plan asks each registered resource kind (workbench.study.kind), in the
order their needs give, which steps it would take; apply hands the plan's
steps back to the kinds that planned them. Each step (a dimension update,
one dataset file's import) is its own transaction, so an interrupted apply
keeps what it finished and the next apply resumes from there.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from workbench.ingest.load import ImportResult
from workbench.jobs.runner import RunReport
from workbench.store.engine import bump_generation
from workbench.store.locks import DEFAULT_LOCK_WAIT_S, study_lock
from workbench.store.meta import record_study
from workbench.store.models import Dataset
from workbench.study.check import StudyCheck
from workbench.study.kind import ApplyContext, PlanContext, ResourceKind, Step, ordered_kinds

# what other modules import from here; each lives with its kind
from workbench.study.kinds.hybrid import hybrid_dimension as _hybrid_dimension  # noqa: F401
from workbench.study.kinds.item_set import item_set_definition, item_set_detail, ordered_item_sets  # noqa: F401
from workbench.study.kinds.report import report_dir, report_is_current, write_study_report  # noqa: F401
from workbench.study.load import LoadedStudy

__all__ = ["Plan", "Step", "apply_study", "make_plan", "plan_rows"]


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)  # datasets in the store the study does not name
    check: StudyCheck | None = None  # what the checks read: apply imports it without reading the files again

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action != "unchanged"]

    def rows(self) -> list[dict[str, str]]:
        """The plan as plain data, one dict per row (kind, name, action, detail); the datasets the store
        holds and the study does not name are rows with action ``keep``."""
        return [st.row() for st in self.steps] + [
            {"kind": "dataset", "name": name, "action": "keep", "detail": "in the store, not in the study"} for name in self.undeclared
        ]


def make_plan(session: Session, loaded: LoadedStudy, *, estimate_costs: bool = False, kinds: Collection[str] | None = None) -> Plan:
    """What apply would do, step by step; raises what apply would refuse. ``estimate_costs``: also estimate
    what the paid raters would cost when the store is not ready for them yet (on a scratch copy).
    ``kinds``: plan only these kinds (default: every registered one)."""
    ctx = PlanContext(loaded, session, estimate_costs=estimate_costs)
    made: set[str] = set()
    for cls in ordered_kinds():
        if kinds is not None and cls.name not in kinds:
            continue
        kind = cls()
        for step in kind.plan(ctx):
            step.owner = step.owner or kind
            ctx.steps.append(step)
        if cls.makes_datasets:
            made.update(kind.provides(loaded.study))
    plan = Plan(ctx.steps, check=ctx.check)
    plan.undeclared = [n for n in session.scalars(select(Dataset.name).order_by(Dataset.name)) if n not in made]
    return plan


def plan_rows(session: Session, loaded: LoadedStudy, *, estimate_costs: bool = False) -> list[dict[str, str]]:
    """The plan as rows of plain data (kind, name, action, detail), for a table, CSV or JSON."""
    return make_plan(session, loaded, estimate_costs=estimate_costs).rows()


def apply_study(
    engine: Engine,
    loaded: LoadedStudy,
    *,
    on_step: Callable[[Step, list[ImportResult] | None], None] | None = None,
    on_rater: Callable[[RunReport], None] | None = None,
    on_rate_progress: Callable[[str], Callable[[int, int], None]] | None = None,
    on_finetune_event: Callable[[str], None] | None = None,
    on_finetune: Callable[[Any], None] | None = None,
    wait_s: float = DEFAULT_LOCK_WAIT_S,
) -> Plan:
    """Carry out the plan, one transaction per step; returns the plan that was carried out.

    One apply at a time per store: another apply already running makes this
    one wait up to `wait_s` seconds, then raise StoreBusyError naming it.
    """
    with study_lock(engine, "apply", wait_s, what="apply", wait_option="--wait"):
        with Session(engine) as s:
            plan = make_plan(s, loaded)
        ctx = ApplyContext(engine, loaded, plan.check, on_step=on_step, on_rater=on_rater, on_rate_progress=on_rate_progress,
                           on_finetune_event=on_finetune_event, on_finetune=on_finetune)  # fmt: skip
        with Session(engine) as s, s.begin():
            if record_study(s, {"name": loaded.study.study, "title": loaded.study.title}):
                bump_generation(s)
        execute(ctx, plan.steps)
        return plan


def execute(ctx: ApplyContext, steps: list[Step]) -> None:
    """Hand each unit of planned steps (the steps of one kind sharing a unit, in plan order) to its kind."""
    start = 0
    while start < len(steps):
        first = steps[start]
        end = start + 1
        while end < len(steps) and _same_unit(first, steps[end]):
            end += 1
        owner = first.owner
        if not isinstance(owner, ResourceKind):
            raise TypeError(f"step {first.kind} {first.name} was not planned by a resource kind")
        owner.apply(ctx, steps[start:end])
        start = end


def _same_unit(a: Step, b: Step) -> bool:
    return a.owner is b.owner and a.unit is not None and a.unit == b.unit
