"""splits: train/test splits, stored as the item sets NAME.train and NAME.test."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from workbench.study.kind import ApplyContext, PlanContext, ResourceKind, Step, register_kind


@register_kind("split")
class SplitKind(ResourceKind):
    section = "splits"
    needs = ("inputs",)

    def provides(self, study) -> list[str]:
        return [f"{n}.{part}" for n in study.splits for part in ("train", "test")]

    def plan(self, ctx: PlanContext) -> Iterator[Step]:
        from workbench.finetune.splits import split_action, split_definition, split_members

        base_dir = ctx.loaded.base_dir
        for name, spec in self.entries(ctx.study):
            if ctx.pending:
                yield self.step(name, "create", "after the steps above", deferred=True)
                continue
            action = split_action(ctx.session, name, split_definition(spec, base_dir))
            if action != "unchanged":
                split_members(ctx.session, name, spec, base_dir)  # apply's own refusals (unknown words, overlap, sizes)
            yield self.step(name, action, f"item sets {name}.train and {name}.test")

    def apply(self, ctx: ApplyContext, steps: list[Step]) -> None:
        from workbench.finetune.splits import save_split, split_action, split_definition

        (step,) = steps
        if step.action == "unchanged":
            return
        name, spec = step.name, ctx.study.splits[step.name]
        with Session(ctx.engine) as s, s.begin():
            if step.deferred and split_action(s, name, split_definition(spec, ctx.loaded.base_dir)) == "unchanged":
                return
            n_train, n_test = save_split(s, name, spec, ctx.loaded.base_dir)
        ctx.done(self.step(name, "create", f"{name}.train: {n_train} items, {name}.test: {n_test} items"))
