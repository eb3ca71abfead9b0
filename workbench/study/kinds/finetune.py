"""finetunes: fine-tuning jobs; each makes a rater named like it (and rates its items when asked)."""

from __future__ import annotations

from collections.abc import Iterator

from workbench.study.kind import ApplyContext, PlanContext, ResourceKind, Step, register_kind


@register_kind("finetune")
class FinetuneKind(ResourceKind):
    section = "finetunes"
    needs = ("split", "rater")

    def plan(self, ctx: PlanContext) -> Iterator[Step]:
        from workbench.finetune.run import finetune_status, tuned_rate_plan
        from workbench.study.finetune import finetune_run

        for name, spec in self.entries(ctx.study):
            what = f"{spec.backend}, train {spec.train}" + (f", then rate {spec.rate}" if spec.rate else "")
            if ctx.pending:
                yield self.step(name, "train", f"{what}, after the steps above", deferred=True)
                continue
            run = finetune_run(ctx.loaded, name)
            state = finetune_status(ctx.session, run)
            if state.status == "succeeded":
                if spec.rate:
                    dry = tuned_rate_plan(ctx.session, run, state.model)
                    if dry.requested:
                        yield self.step(name, "rate", f"trained; {dry.requested} of {dry.target} items to rate")
                        continue
                yield self.step(name, "unchanged", f"job {state.job_id} succeeded: {state.model}")
            elif state.status in ("failed", "cancelled"):
                yield self.step(name, "unchanged", f"job {state.job_id} {state.status}: {state.error}; "
                                                   f"`workbench finetune start {name} --restart` tries again")  # fmt: skip
            elif state.status == "running":
                yield self.step(name, "train", f"{what}, resume job {state.job_id}")
            else:
                yield self.step(name, "train", what)

    def apply(self, ctx: ApplyContext, steps: list[Step]) -> None:
        from workbench.study.finetune import start_finetune

        # every fine-tune is started: a finished one only reports (a failed one says how to try again), a
        # running one resumes, a succeeded one rates what is left
        for step in steps:
            ft = start_finetune(ctx.engine, ctx.loaded, step.name, on_event=ctx.on_finetune_event,
                                on_rate_progress=ctx.progress(step.name))  # fmt: skip
            if ctx.on_rater and ft.rating is not None:
                ctx.on_rater(ft.rating)
            if ctx.on_finetune:
                ctx.on_finetune(ft)
