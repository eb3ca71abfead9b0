"""Item sets ranked by how unsure the raters are (item_sets entries with uncertainty:): made after the raters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workbench.study.kind import ApplyContext, PlanContext, ResourceKind, Step, register_kind
from workbench.study.kinds.item_set import item_set_definition, ordered_item_sets, save_planned_item_set


@register_kind("uncertainty set")
class UncertaintySetKind(ResourceKind):
    label = "item set"
    section = "item_sets"
    needs = ("rater", "finetune", "stacked rater")

    def entries(self, study) -> list[tuple[str, Any]]:
        return [(n, spec) for n, spec in ordered_item_sets(study) if spec.uncertainty is not None]

    def plan(self, ctx: PlanContext) -> Iterator[Step]:
        from workbench.store.itemsets import item_set_action

        for name, spec in self.entries(ctx.study):
            detail = f"top {spec.uncertainty.top} by {spec.uncertainty.by}"
            if ctx.pending:
                yield self.step(name, "create", detail, deferred=True)
            else:
                yield self.step(name, item_set_action(ctx.session, name, item_set_definition(spec)), detail)

    def apply(self, ctx: ApplyContext, steps: list[Step]) -> None:
        for step in steps:
            save_planned_item_set(ctx, self, step)
