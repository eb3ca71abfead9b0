"""reports: validation reports apply writes (raters against gold norms), rewritten when the store changed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from workbench.files import ensure_output_folder, writing
from workbench.store.engine import store_version
from workbench.study.kind import ApplyContext, PlanContext, ResourceKind, Step, register_kind
from workbench.study.load import LoadedStudy
from workbench.study.models import ReportSpec


def report_dir(loaded: LoadedStudy, spec: ReportSpec) -> Path:
    out = Path(spec.out)
    return out if out.is_absolute() else loaded.base_dir / out


def _report_stamp(loaded: LoadedStudy, name: str, spec: ReportSpec, version: str) -> tuple[Path, str]:
    key = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:16]
    return report_dir(loaded, spec) / f".{name}.stamp", f"{version}:{key}"


def report_is_current(loaded: LoadedStudy, name: str, spec: ReportSpec, version: str) -> bool:
    """True when the report's files were written from this store (identity + generation, see
    `workbench.store.meta.store_version`) and this spec."""
    stamp, value = _report_stamp(loaded, name, spec, version)
    files = [report_dir(loaded, spec) / f"{name}.{fmt}" for fmt in spec.formats]
    return stamp.exists() and stamp.read_text() == value and all(f.exists() for f in files)


def write_study_report(engine: Engine, loaded: LoadedStudy, name: str, spec: ReportSpec) -> list[Path]:
    """Write one of the study's reports in each of its formats."""
    from workbench.analysis.report import build_report, write_report

    with Session(engine) as s:
        version = store_version(s)
        cal = spec.calibrate.model_dump() if spec.calibrate else None
        rep, datas = build_report(
            s, dimension=spec.dimension, dimensions=list(loaded.study.dimensions) or None, gold=spec.gold, raters=spec.raters, items=spec.items,
            n_boot=spec.n_boot, seed=spec.seed, calibrate=cal, title=f"{loaded.study.study}: {name}",
            intervals=spec.intervals.model_dump() if spec.intervals else None,
            ppi=spec.ppi.model_dump(by_alias=True) if spec.ppi else None,
        )  # fmt: skip
    written = []
    folder = ensure_output_folder(report_dir(loaded, spec), f"reports.{name}.out")
    for fmt in spec.formats:
        with writing(folder / f"{name}.{fmt}", f"reports.{name}.out"):
            written += write_report(rep, datas, folder / f"{name}.{fmt}", fmt)
    stamp, value = _report_stamp(loaded, name, spec, version)
    stamp.write_text(value)
    return written


@register_kind("report")
class ReportKind(ResourceKind):
    section = "reports"
    needs = ("rater", "stacked rater", "finetune", "uncertainty set", "hybrid")

    def plan(self, ctx: PlanContext) -> Iterator[Step]:
        for name, spec in self.entries(ctx.study):
            where = str(report_dir(ctx.loaded, spec))
            if ctx.pending:
                yield self.step(name, "write", where, deferred=True)
            else:
                fresh = report_is_current(ctx.loaded, name, spec, store_version(ctx.session))
                yield self.step(name, "unchanged" if fresh else "write", where)

    def apply(self, ctx: ApplyContext, steps: list[Step]) -> None:
        (step,) = steps
        if step.action == "unchanged":
            return
        spec = ctx.study.reports[step.name]
        if step.deferred:
            with Session(ctx.engine) as s:
                if report_is_current(ctx.loaded, step.name, spec, store_version(s)):
                    return
        written = write_study_report(ctx.engine, ctx.loaded, step.name, spec)
        ctx.done(self.step(step.name, "write", str(written[0])))
