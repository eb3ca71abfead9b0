"""dimensions: what is rated, on which scale."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.store.engine import bump_generation
from workbench.store.models import Dimension
from workbench.study.kind import ApplyContext, PlanContext, ResourceKind, Step, register_kind


def _values(spec) -> tuple:
    return (spec.scale[0], spec.scale[1], spec.step, spec.labels or None, spec.instructions)


@register_kind("dimension")
class DimensionKind(ResourceKind):
    section = "dimensions"

    def plan(self, ctx: PlanContext) -> Iterator[Step]:
        for name, spec in self.entries(ctx.study):
            dim = ctx.session.scalar(select(Dimension).where(Dimension.name == name))
            have = (dim.scale_min, dim.scale_max, dim.scale_step, dim.labels or None, dim.instructions) if dim else None
            action = "create" if dim is None else "unchanged" if _values(spec) == have else "update"
            # every dimension is one unit: their changes are one transaction
            yield self.step(name, action, f"scale {spec.scale[0]:g}-{spec.scale[1]:g}", unit="dimensions")

    def apply(self, ctx: ApplyContext, steps: list[Step]) -> None:
        specs = ctx.study.dimensions
        changed = [st for st in steps if st.action != "unchanged"]
        if changed:
            with Session(ctx.engine) as s, s.begin():
                for st in changed:
                    spec = specs[st.name]
                    dim = s.scalar(select(Dimension).where(Dimension.name == st.name)) or Dimension(name=st.name)
                    dim.scale_min, dim.scale_max, dim.scale_step = spec.scale[0], spec.scale[1], spec.step
                    dim.labels, dim.instructions = spec.labels or None, spec.instructions
                    s.add(dim)
                bump_generation(s)
        for st in steps:
            ctx.done(st)
