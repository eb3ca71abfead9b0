"""The study's inputs, checked: not a resource, the node between what is read and what is made of it.

Every check apply would make on the datasets and word lists (their files, read the way apply imports
them) and on the names item sets, splits and raters use (study/check.py), made once those inputs are
planned and before any kind that draws on them: what apply would refuse, the plan refuses first. What
the checks read is kept in the plan, so apply imports it without reading the files again.
"""

from __future__ import annotations

from collections.abc import Iterator

from workbench.study.kind import ApplyContext, PlanContext, ResourceKind, Step, register_kind


@register_kind("inputs")
class Inputs(ResourceKind):
    needs = ("dataset", "word list")

    def plan(self, ctx: PlanContext) -> Iterator[Step]:
        from workbench.study.check import check_study

        # the datasets and word lists the store holds from these very files: apply will not read them again
        stored = {st.name for st in ctx.steps if st.kind in ("dataset", "word list") and st.action == "unchanged"}
        ctx.check = check_study(ctx.loaded, ctx.session, skip=stored)
        yield from ()

    def apply(self, ctx: ApplyContext, steps: list[Step]) -> None:
        pass
