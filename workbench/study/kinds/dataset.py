"""datasets: published norm files to import (a preset file may hold several datasets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.study.kind import ApplyContext, PlanContext, ResourceKind, Step, register_kind
from workbench.study.load import dataset_specs, is_outside, resolve_file, separator_of


@register_kind("dataset")
class DatasetKind(ResourceKind):
    section = "datasets"
    needs = ("dimension",)
    makes_datasets = True

    def provides(self, study) -> list[str]:
        return [s.name for n, src in study.datasets.items() for s in dataset_specs(n, src, study.dimensions)]

    def plan(self, ctx: PlanContext) -> Iterator[Step]:
        from workbench.ingest.load import file_checksum, plan_import

        loaded, study = ctx.loaded, ctx.study
        for name, src in self.entries(study):
            path = resolve_file(src.file, loaded.base_dir)
            specs = dataset_specs(name, src, study.dimensions)
            if not path.exists():
                raise WorkbenchError(f"{loaded.path}: datasets.{name}.file: no file at {path}.")
            actions = plan_import(ctx.session, path, specs, file_checksum(path))
            detail = src.preset and f"preset {src.preset}" or "columns " + ", ".join(src.ratings or {})
            # a file outside the study's folder is shown in full, so the user sees what will be read
            shown = (
                f"{path.resolve()} (outside the study folder)"
                if not src.file.startswith("package:") and is_outside(path, loaded.base_dir)
                else path.name
            )
            for ds_name, action in actions.items():
                yield self.step(ds_name, action, f"{shown}, {detail}", unit=name)  # one file: one import

    def apply(self, ctx: ApplyContext, steps: list[Step]) -> None:
        from workbench.ingest.load import import_file

        if all(st.action == "unchanged" for st in steps):
            for st in steps:
                ctx.done(st)
            return
        loaded, study = ctx.loaded, ctx.study
        name = steps[0].unit
        src = study.datasets[name]
        path = resolve_file(src.file, loaded.base_dir)
        with Session(ctx.engine) as s, s.begin():
            results = import_file(
                s,
                Path(path),
                dataset_specs(name, src, study.dimensions),
                replace=True,
                skip_invalid=src.skip_invalid,
                rejects_path=loaded.base_dir / f"{name}.rejected.csv",
                encoding=src.encoding,
                separator=separator_of(src),
                sheet=src.sheet,
                origin=src.file,
                raw=ctx.check.raw.get(path) if ctx.check else None,
            )
        for st in steps:
            ctx.done(st, [r for r in results if r.dataset == st.name])
