"""word_lists: words to rate that come with no ratings; their other columns become attributes."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.study.kind import ApplyContext, PlanContext, ResourceKind, Step, register_kind
from workbench.study.load import is_outside, resolve_file, separator_of, word_list_spec


@register_kind("word list")
class WordListKind(ResourceKind):
    section = "word_lists"
    makes_datasets = True

    def provides(self, study) -> list[str]:
        return list(study.word_lists)

    def plan(self, ctx: PlanContext) -> Iterator[Step]:
        from workbench.ingest.load import file_checksum
        from workbench.ingest.words import plan_word_list

        loaded = ctx.loaded
        for name, wsrc in self.entries(ctx.study):
            path = resolve_file(wsrc.file, loaded.base_dir)
            if not path.exists():
                raise WorkbenchError(f"{loaded.path}: word_lists.{name}.file: no file at {path}.")
            action = plan_word_list(ctx.session, path, word_list_spec(name, wsrc), file_checksum(path))
            shown = f"{path.resolve()} (outside the study folder)" if is_outside(path, loaded.base_dir) else path.name
            yield self.step(name, action, f"{shown}, words to rate, no ratings")

    def apply(self, ctx: ApplyContext, steps: list[Step]) -> None:
        from workbench.ingest.words import import_word_list

        (step,) = steps
        if step.action == "unchanged":
            return
        name, wsrc = step.name, ctx.study.word_lists[step.name]
        with Session(ctx.engine) as s, s.begin():
            result = import_word_list(s, resolve_file(wsrc.file, ctx.loaded.base_dir), word_list_spec(name, wsrc), encoding=wsrc.encoding,
                                      separator=separator_of(wsrc), sheet=wsrc.sheet, origin=wsrc.file,
                                      table=ctx.check.words.get(name) if ctx.check else None)  # fmt: skip
        ctx.done(self.step(name, step.action, f"{result.items} words"))
