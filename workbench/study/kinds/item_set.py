"""item_sets: named sets of items drawn from datasets, word lists and other item sets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.study.kind import ApplyContext, PlanContext, ResourceKind, Step, register_kind
from workbench.study.models import ItemSetSpec


def ordered_item_sets(study) -> list[tuple[str, ItemSetSpec]]:
    """The study's item sets, each after the item sets it draws on (declaration order otherwise); a cycle
    is refused."""
    done: dict[str, ItemSetSpec] = {}
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise WorkbenchError(f"item_sets: {cycle}: the item sets draw on each other in a circle; break the circle.")
        visiting.append(name)
        spec = study.item_sets[name]
        for ref in [*spec.from_, *spec.union, *spec.exclude]:
            if ref in study.item_sets:
                visit(ref)
        visiting.pop()
        done[name] = spec

    for name in study.item_sets:
        visit(name)
    return list(done.items())


def item_set_detail(spec: ItemSetSpec) -> str:
    """How an item set is made, in words: from a, b; union of c, d; where band = rare."""
    parts = []
    if spec.from_:
        parts.append(("items of " if len(spec.from_) == 1 else "items shared by ") + ", ".join(spec.from_))
    if spec.union:
        parts.append("items of any of " + ", ".join(spec.union))
    if spec.where:
        parts.append("where " + " and ".join(f"{k} = {' or '.join(v)}" for k, v in spec.where.items()))
    if spec.exclude:
        parts.append("except " + ", ".join(spec.exclude))
    if spec.sample:
        parts.append(f"a sample of {spec.sample}")
    return "; ".join(parts)


def item_set_definition(spec: ItemSetSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"from": list(spec.from_), "exclude": list(spec.exclude), "sample": spec.sample, "seed": spec.seed}
    if spec.union:  # only when given, so the sets saved before union and where existed stay unchanged
        out["union"] = list(spec.union)
    if spec.where:
        out["where"] = {k: list(v) for k, v in spec.where.items()}
    if spec.uncertainty is not None:  # ranked by raters' ratings: made after the raters have run
        out["uncertainty"] = spec.uncertainty.model_dump()
    return out


def save_planned_item_set(ctx: ApplyContext, kind: ResourceKind, step: Step) -> None:
    """Save an item set the plan says to make; one planned after a change is decided now (it may be unchanged)."""
    from workbench.store.itemsets import item_set_action, save_item_set
    from workbench.store.locks import lock_names

    if step.action == "unchanged":
        return
    definition = item_set_definition(ctx.study.item_sets[step.name])
    with Session(ctx.engine) as s, s.begin():
        lock_names(s, "item_set", [step.name])  # a parallel writer of the same set waits, then finds it done
        if step.deferred and item_set_action(s, step.name, definition) == "unchanged":
            return
        size = save_item_set(s, step.name, definition)
    ctx.done(kind.step(step.name, "create", f"{size} items"))


@register_kind("item set")
class ItemSetKind(ResourceKind):
    """The item sets made from what the store holds (not those ranked by raters: see uncertainty set)."""

    section = "item_sets"
    needs = ("inputs",)

    def entries(self, study) -> list[tuple[str, Any]]:
        return [(n, spec) for n, spec in ordered_item_sets(study) if spec.uncertainty is None]

    def provides(self, study) -> list[str]:
        return list(study.item_sets)

    def plan(self, ctx: PlanContext) -> Iterator[Step]:
        from workbench.store.itemsets import check_item_set, item_set_action

        for name, spec in self.entries(ctx.study):
            if ctx.pending:
                yield self.step(name, "create", f"{item_set_detail(spec)}; after the steps above", deferred=True)
                continue
            definition = item_set_definition(spec)
            action = item_set_action(ctx.session, name, definition)
            if action != "unchanged":
                check_item_set(ctx.session, name, definition)  # apply's own refusals (empty, a dataset's name)
            yield self.step(name, action, item_set_detail(spec))

    def apply(self, ctx: ApplyContext, steps: list[Step]) -> None:
        for step in steps:
            save_planned_item_set(ctx, self, step)
