"""hybrids: hybrid norms (a calibrated machine prior and human ratings), stored as datasets (study/hybrid.py)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.study.kind import ApplyContext, PlanContext, ResourceKind, Step, register_kind


def hybrid_dimension(study, name: str, spec) -> str:
    """The dimension of the study's hybrid ``name``: its own, or the study's only one."""
    if spec.dimension:
        return spec.dimension
    if len(study.dimensions) != 1:
        raise WorkbenchError(f"hybrids.{name}: the study has {len(study.dimensions)} dimensions: say which one with dimension:.")
    return next(iter(study.dimensions))


@register_kind("hybrid")
class HybridKind(ResourceKind):
    section = "hybrids"
    needs = ("dataset", "rater", "stacked rater", "uncertainty set")

    def provides(self, study) -> list[str]:
        return list(study.hybrids)

    def plan(self, ctx: PlanContext) -> Iterator[Step]:
        from workbench.study.hybrid import hybrid_action

        for name, spec in self.entries(ctx.study):
            detail = f"prior {spec.prior}, humans {spec.humans}, items {spec.items}"
            if ctx.pending:
                yield self.step(name, "create", detail, deferred=True)
            else:
                yield self.step(name, hybrid_action(ctx.session, name, spec, hybrid_dimension(ctx.study, name, spec)), detail)

    def apply(self, ctx: ApplyContext, steps: list[Step]) -> None:
        from workbench.study.hybrid import hybrid_action, save_hybrid

        (step,) = steps
        if step.action == "unchanged":
            return
        study = ctx.study
        name, spec = step.name, study.hybrids[step.name]
        dim = hybrid_dimension(study, name, spec)
        action = step.action
        with Session(ctx.engine) as s, s.begin():
            if step.deferred:
                action = hybrid_action(s, name, spec, dim)
                if action == "unchanged":
                    return
            result = save_hybrid(s, name, spec, dim, campaigns=list(study.campaigns))
        c = result.counts()
        detail = f"{len(result.words)} words: {c['both']} both, {c['machine']} machine only, {c['human']} human only"
        ctx.done(self.step(name, action, "; ".join([detail, *result.notes])))
