"""raters: LLM raters and baselines, each rating the items it has not rated yet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workbench.study.kind import ApplyContext, PlanContext, ResourceKind, Step, register_kind


def _cost(report) -> str:
    """A dry run's estimated cost, for a plan line ('' for a rater that costs nothing)."""
    if report is None or not report.estimated_tokens:
        return ""
    if report.estimated_cost is None:
        return ", cost unknown: give the rater price: {input, output}"
    cost = report.estimated_cost
    shown = f"about ${cost:,.2f}" if cost >= 0.01 else "less than $0.01"
    return f", {shown} ({report.requests} requests)"


def _scratch_estimates(loaded, names: list[str]) -> dict[str, Any]:
    """Dry runs of the paid raters among ``names`` on a scratch copy of the store (nothing is written to the real one)."""
    import tempfile

    from workbench.raters.backend import backend_class
    from workbench.study.rate import dry_run_rater

    paid = [n for n in names if backend_class(loaded.study.raters[n].backend).bills]
    if not paid:
        return {}
    with tempfile.TemporaryDirectory(prefix="workbench-plan-") as tmp:
        return {name: dry_run_rater(f"sqlite:///{tmp}/none.db", loaded, name) for name in paid}


@register_kind("rater")
class RaterKind(ResourceKind):
    """The raters that rate items (those that rate from other raters' ratings: stacked rater)."""

    section = "raters"
    needs = ("dimension", "item set", "split")
    stacked = False  # True: the raters whose backend rates from other raters' ratings

    def entries(self, study) -> list[tuple[str, Any]]:
        from workbench.raters.backend import backend_class

        return [(n, spec) for n, spec in study.raters.items() if backend_class(spec.backend).rates_from_raters == self.stacked]

    def plan(self, ctx: PlanContext) -> Iterator[Step]:
        from workbench.study.rate import run_rater_dry

        names = [n for n, _ in self.entries(ctx.study)]
        scratch = _scratch_estimates(ctx.loaded, names) if ctx.estimate_costs and ctx.pending and not self.stacked else {}
        for name in names:
            spec = ctx.study.raters[name]
            what = f"{spec.backend}" + (f" {spec.model_name}" if spec.model_name else "")
            if ctx.pending:
                estimate = scratch.get(name)
                if estimate is not None:
                    detail = f"{what}, {estimate.requested} items{_cost(estimate)}, after the steps above"
                else:
                    detail = f"{what}, after the steps above"
                yield self.step(name, "rate", detail, deferred=True)
                continue
            report = run_rater_dry(ctx.session, ctx.loaded, name)
            if report.requested == 0:
                yield self.step(name, "unchanged", f"{what}, {report.target} items rated")
            else:
                yield self.step(name, "rate", f"{what}, {report.requested} of {report.target} items{_cost(report)}")

    def apply(self, ctx: ApplyContext, steps: list[Step]) -> None:
        from workbench.study.rate import run_rater

        # every rater runs, "unchanged" ones too: the job runner rates only what is left, and picks up work
        # an earlier run left waiting upstream (a batch); the caller hears of each run
        for step in steps:
            report = run_rater(ctx.engine, ctx.loaded, step.name, on_progress=ctx.progress(step.name))
            if ctx.on_rater:
                ctx.on_rater(report)
