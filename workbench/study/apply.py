"""plan and apply: make the store match the study file, doing only what is missing.

Each step (a dimension update, one dataset file's import) is its own
transaction, so an interrupted apply keeps what it finished and the next
apply resumes from there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from workbench.files import ensure_output_folder, writing
from workbench.ingest.load import ImportResult, file_checksum, import_file, plan_import
from workbench.jobs.runner import RunReport
from workbench.store.engine import bump_generation, store_version
from workbench.store.itemsets import check_item_set, item_set_action, save_item_set
from workbench.store.locks import DEFAULT_LOCK_WAIT_S, lock_names, study_lock
from workbench.store.meta import record_study
from workbench.store.models import Dataset, Dimension
from workbench.study.check import StudyCheck, check_study
from workbench.study.load import LoadedStudy, dataset_specs, is_outside, resolve_file, separator_of, word_list_spec
from workbench.study.models import ItemSetSpec, ReportSpec
from workbench.study.rate import run_rater, run_rater_dry


@dataclass
class Step:
    kind: str  # dimension | dataset | item set | rater
    name: str
    action: str  # create | update | import | replace | rate | unchanged
    detail: str = ""

    def describe(self) -> str:
        verb = {
            "create": "create",
            "update": "update",
            "import": "import",
            "replace": "replace",
            "rate": "rate",
            "write": "write",
            "train": "train",
            "unchanged": "unchanged",
        }[self.action]
        return f"{verb:<9} {self.kind} {self.name}" + (f"  ({self.detail})" if self.detail else "")


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)  # datasets in the store the study does not name
    check: StudyCheck | None = None  # what the checks read: apply imports it without reading the files again

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action != "unchanged"]


def _dimension_action(session: Session, name: str, spec) -> str:
    dim = session.scalar(select(Dimension).where(Dimension.name == name))
    if dim is None:
        return "create"
    wanted = (spec.scale[0], spec.scale[1], spec.step, spec.labels or None, spec.instructions)
    have = (dim.scale_min, dim.scale_max, dim.scale_step, dim.labels or None, dim.instructions)
    return "unchanged" if wanted == have else "update"


def make_plan(session: Session, loaded: LoadedStudy, *, estimate_costs: bool = False) -> Plan:
    """What apply would do, step by step; raises what apply would refuse. ``estimate_costs``: also estimate
    what the paid raters would cost when the store is not ready for them yet (on a scratch copy)."""
    study = loaded.study
    plan = Plan()
    for name, spec in study.dimensions.items():
        action = _dimension_action(session, name, spec)
        plan.steps.append(Step("dimension", name, action, f"scale {spec.scale[0]:g}-{spec.scale[1]:g}"))
    declared: set[str] = set()
    for name, src in study.datasets.items():
        path = resolve_file(src.file, loaded.base_dir)
        specs = dataset_specs(name, src, study.dimensions)
        declared.update(s.name for s in specs)
        if not path.exists():
            from workbench.errors import WorkbenchError

            raise WorkbenchError(f"{loaded.path}: datasets.{name}.file: no file at {path}.")
        actions = plan_import(session, path, specs, file_checksum(path))
        for ds_name, action in actions.items():
            detail = src.preset and f"preset {src.preset}" or "columns " + ", ".join(src.ratings or {})
            # a file outside the study's folder is shown in full, so the user sees what will be read
            shown = (
                f"{path.resolve()} (outside the study folder)"
                if not src.file.startswith("package:") and is_outside(path, loaded.base_dir)
                else path.name
            )
            plan.steps.append(Step("dataset", ds_name, action, f"{shown}, {detail}"))
    for name, wsrc in study.word_lists.items():
        path = resolve_file(wsrc.file, loaded.base_dir)
        declared.add(name)
        if not path.exists():
            from workbench.errors import WorkbenchError

            raise WorkbenchError(f"{loaded.path}: word_lists.{name}.file: no file at {path}.")
        from workbench.ingest.words import plan_word_list

        action = plan_word_list(session, path, word_list_spec(name, wsrc), file_checksum(path))
        shown = f"{path.resolve()} (outside the study folder)" if is_outside(path, loaded.base_dir) else path.name
        plan.steps.append(Step("word list", name, action, f"{shown}, words to rate, no ratings"))
    plan.undeclared = [n for n in session.scalars(select(Dataset.name).order_by(Dataset.name)) if n not in declared]
    # what apply would refuse, refused now: the files it will read, the names, the word files, the raters' items
    stored = {st.name for st in plan.steps if st.kind in ("dataset", "word list") and st.action == "unchanged"}
    plan.check = check_study(loaded, session, skip=stored)
    waiting = bool(plan.changes)
    for name, spec in ordered_item_sets(study):
        if spec.uncertainty is not None:
            continue  # after the raters, below
        if waiting:
            plan.steps.append(Step("item set", name, "create", f"{item_set_detail(spec)}; after the steps above"))
            continue
        action = item_set_action(session, name, item_set_definition(spec))
        if action != "unchanged":
            check_item_set(session, name, item_set_definition(spec))  # apply's own refusals (empty, a dataset's name)
        plan.steps.append(Step("item set", name, action, item_set_detail(spec)))
        waiting = waiting or action != "unchanged"
    for step in _split_steps(session, loaded, waiting):
        plan.steps.append(step)
        waiting = waiting or step.action != "unchanged"
    scratch = _scratch_estimates(loaded) if estimate_costs and waiting else {}
    for name in _raters(study, later=False):
        step = _rater_step(session, loaded, name, waiting, scratch.get(name))
        plan.steps.append(step)
        waiting = waiting or step.action != "unchanged"
    for step in _finetune_steps(session, loaded, waiting):
        plan.steps.append(step)
        waiting = waiting or step.action != "unchanged"
    for name in _raters(study, later=True):  # raters that rate from other raters' ratings (a stack)
        step = _rater_step(session, loaded, name, waiting)
        plan.steps.append(step)
        waiting = waiting or step.action != "unchanged"
    for name, spec in study.item_sets.items():
        if spec.uncertainty is not None:
            action = "create" if waiting else item_set_action(session, name, item_set_definition(spec))
            plan.steps.append(Step("item set", name, action, f"top {spec.uncertainty.top} by {spec.uncertainty.by}"))
            waiting = waiting or action != "unchanged"
    for name, spec in study.hybrids.items():
        from workbench.study.hybrid import hybrid_action

        action = "create" if waiting else hybrid_action(session, name, spec, _hybrid_dimension(study, name, spec))
        plan.steps.append(Step("hybrid", name, action, f"prior {spec.prior}, humans {spec.humans}, items {spec.items}"))
        waiting = waiting or action != "unchanged"
    for name, spec in study.reports.items():
        fresh = not waiting and report_is_current(loaded, name, spec, store_version(session))
        plan.steps.append(Step("report", name, "unchanged" if fresh else "write", str(report_dir(loaded, spec))))
    return plan


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


def _save_item_sets(engine: Engine, study, *, ranked: bool, on_step) -> None:
    for name, spec in ordered_item_sets(study):
        if (spec.uncertainty is not None) != ranked:
            continue
        definition = item_set_definition(spec)
        with Session(engine) as s, s.begin():
            lock_names(s, "item_set", [name])  # a parallel apply saving the same set waits, then finds it done
            if item_set_action(s, name, definition) == "unchanged":
                continue
            size = save_item_set(s, name, definition)
        if on_step:
            on_step(Step("item set", name, "create", f"{size} items"), None)


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
            from workbench.errors import WorkbenchError

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


def _hybrid_dimension(study, name: str, spec) -> str:
    if spec.dimension:
        return spec.dimension
    if len(study.dimensions) != 1:
        from workbench.errors import WorkbenchError

        raise WorkbenchError(f"hybrids.{name}: the study has {len(study.dimensions)} dimensions: say which one with dimension:.")
    return next(iter(study.dimensions))


def _raters(study, *, later: bool) -> list[str]:
    """The study's raters in order: those that rate from other raters' ratings (later=True) after the rest."""
    from workbench.raters.backend import backend_class

    return [name for name, spec in study.raters.items() if backend_class(spec.backend).rates_from_raters == later]


def item_set_definition(spec: ItemSetSpec) -> dict:
    out = {"from": list(spec.from_), "exclude": list(spec.exclude), "sample": spec.sample, "seed": spec.seed}
    if spec.union:  # only when given, so the sets saved before union and where existed stay unchanged
        out["union"] = list(spec.union)
    if spec.where:
        out["where"] = {k: list(v) for k, v in spec.where.items()}
    if spec.uncertainty is not None:  # ranked by raters' ratings: made after the raters have run
        out["uncertainty"] = spec.uncertainty.model_dump()
    return out


def _cost(report) -> str:
    """A dry run's estimated cost, for a plan line ('' for a rater that costs nothing)."""
    if report is None or not report.estimated_tokens:
        return ""
    if report.estimated_cost is None:
        return ", cost unknown: give the rater price: {input, output}"
    cost = report.estimated_cost
    shown = f"about ${cost:,.2f}" if cost >= 0.01 else "less than $0.01"
    return f", {shown} ({report.requests} requests)"


def _scratch_estimates(loaded: LoadedStudy) -> dict:
    """Dry runs of the study's paid raters on a scratch copy of the store (nothing is written to the real one)."""
    from workbench.raters.backend import backend_class

    paid = [n for n, spec in loaded.study.raters.items() if backend_class(spec.backend).bills]
    if not paid:
        return {}
    from workbench.study.rate import dry_run_rater

    out = {}
    import tempfile

    with tempfile.TemporaryDirectory(prefix="workbench-plan-") as tmp:
        for name in paid:
            out[name] = dry_run_rater(f"sqlite:///{tmp}/none.db", loaded, name)
    return out


def _rater_step(session: Session, loaded: LoadedStudy, name: str, waiting: bool, estimate=None) -> Step:
    spec = loaded.study.raters[name]
    what = f"{spec.backend}" + (f" {spec.model_name}" if spec.model_name else "")
    if waiting:
        if estimate is not None:
            return Step("rater", name, "rate", f"{what}, {estimate.requested} items{_cost(estimate)}, after the steps above")
        return Step("rater", name, "rate", f"{what}, after the steps above")
    report = run_rater_dry(session, loaded, name)
    if report.requested == 0:
        return Step("rater", name, "unchanged", f"{what}, {report.target} items rated")
    return Step("rater", name, "rate", f"{what}, {report.requested} of {report.target} items{_cost(report)}")


def apply_study(
    engine: Engine,
    loaded: LoadedStudy,
    *,
    on_step: Callable[[Step, list[ImportResult] | None], None] | None = None,
    on_rater: Callable[[RunReport], None] | None = None,
    on_rate_progress: Callable[[str], Callable[[int, int], None]] | None = None,
    on_finetune_event: Callable[[str], None] | None = None,
    on_finetune: Callable[[Any], None] | None = None,
    wait_s: float = DEFAULT_LOCK_WAIT_S,
) -> Plan:
    """Carry out the plan, one transaction per step; returns the plan that was carried out.

    One apply at a time per store: another apply already running makes this
    one wait up to `wait_s` seconds, then raise StoreBusyError naming it.
    """
    with study_lock(engine, "apply", wait_s, what="apply", wait_option="--wait"):
        return _apply_study(engine, loaded, on_step=on_step, on_rater=on_rater, on_rate_progress=on_rate_progress,
                            on_finetune_event=on_finetune_event, on_finetune=on_finetune)  # fmt: skip


def _apply_study(engine: Engine, loaded: LoadedStudy, *, on_step, on_rater, on_rate_progress, on_finetune_event,
                 on_finetune=None) -> Plan:  # fmt: skip
    study = loaded.study
    with Session(engine) as s:
        plan = make_plan(s, loaded)
    raw = plan.check.raw if plan.check else {}
    words = plan.check.words if plan.check else {}
    dims = {st.name: st for st in plan.steps if st.kind == "dimension"}
    with Session(engine) as s, s.begin():
        changed = False
        for name, spec in study.dimensions.items():
            if dims[name].action == "unchanged":
                continue
            dim = s.scalar(select(Dimension).where(Dimension.name == name)) or Dimension(name=name)
            dim.scale_min, dim.scale_max, dim.scale_step = spec.scale[0], spec.scale[1], spec.step
            dim.labels, dim.instructions = spec.labels or None, spec.instructions
            s.add(dim)
            changed = True
        changed = record_study(s, {"name": study.study, "title": study.title}) or changed
        if changed:
            bump_generation(s)
    if on_step:
        for st in dims.values():
            on_step(st, None)
    for name, src in study.datasets.items():
        specs = dataset_specs(name, src, study.dimensions)
        steps = [st for st in plan.steps if st.kind == "dataset" and st.name in {sp.name for sp in specs}]
        if all(st.action == "unchanged" for st in steps):
            if on_step:
                for st in steps:
                    on_step(st, None)
            continue
        path = resolve_file(src.file, loaded.base_dir)
        rejects = loaded.base_dir / f"{name}.rejected.csv"
        with Session(engine) as s, s.begin():
            results = import_file(
                s,
                Path(path),
                specs,
                replace=True,
                skip_invalid=src.skip_invalid,
                rejects_path=rejects,
                encoding=src.encoding,
                separator=separator_of(src),
                sheet=src.sheet,
                origin=src.file,
                raw=raw.get(path),
            )
        if on_step:
            for st in steps:
                on_step(st, [r for r in results if r.dataset == st.name])
    for name, wsrc in study.word_lists.items():
        from workbench.ingest.words import import_word_list

        step = next(st for st in plan.steps if st.kind == "word list" and st.name == name)
        if step.action == "unchanged":
            continue
        with Session(engine) as s, s.begin():
            result = import_word_list(s, resolve_file(wsrc.file, loaded.base_dir), word_list_spec(name, wsrc), encoding=wsrc.encoding,
                                      separator=separator_of(wsrc), sheet=wsrc.sheet, origin=wsrc.file, table=words.get(name))  # fmt: skip
        if on_step:
            on_step(Step("word list", name, step.action, f"{result.items} words"), None)
    _save_item_sets(engine, study, ranked=False, on_step=on_step)
    for name, spec in study.splits.items():
        from workbench.finetune.splits import save_split, split_action, split_definition

        with Session(engine) as s, s.begin():
            if split_action(s, name, split_definition(spec, loaded.base_dir)) == "unchanged":
                continue
            n_train, n_test = save_split(s, name, spec, loaded.base_dir)
        if on_step:
            on_step(Step("split", name, "create", f"{name}.train: {n_train} items, {name}.test: {n_test} items"), None)
    for name in _raters(study, later=False):
        report = run_rater(engine, loaded, name, on_progress=on_rate_progress(name) if on_rate_progress else None)
        if on_rater:
            on_rater(report)
    for name in study.finetunes:
        from workbench.study.finetune import start_finetune

        ft = start_finetune(engine, loaded, name, on_event=on_finetune_event,
                            on_rate_progress=on_rate_progress(name) if on_rate_progress else None)  # fmt: skip
        if on_rater and ft.rating is not None:
            on_rater(ft.rating)
        if on_finetune:
            on_finetune(ft)
    for name in _raters(study, later=True):
        report = run_rater(engine, loaded, name, on_progress=on_rate_progress(name) if on_rate_progress else None)
        if on_rater:
            on_rater(report)
    _save_item_sets(engine, study, ranked=True, on_step=on_step)  # item sets ranked by the raters' ratings
    for name, spec in study.hybrids.items():
        from workbench.study.hybrid import hybrid_action, save_hybrid

        dim = _hybrid_dimension(study, name, spec)
        with Session(engine) as s, s.begin():
            action = hybrid_action(s, name, spec, dim)
            if action == "unchanged":
                continue
            result = save_hybrid(s, name, spec, dim, campaigns=list(study.campaigns))
        if on_step:
            c = result.counts()
            detail = f"{len(result.words)} words: {c['both']} both, {c['machine']} machine only, {c['human']} human only"
            on_step(Step("hybrid", name, action, "; ".join([detail, *result.notes])), None)
    for name, spec in study.reports.items():
        with Session(engine) as s:
            current = report_is_current(loaded, name, spec, store_version(s))
        if current:
            continue
        written = write_study_report(engine, loaded, name, spec)
        if on_step:
            on_step(Step("report", name, "write", str(written[0])), None)
    return plan


def _split_steps(session: Session, loaded: LoadedStudy, waiting: bool) -> list[Step]:
    from workbench.finetune.splits import split_action, split_definition, split_members

    steps = []
    for name, spec in loaded.study.splits.items():
        if waiting:
            steps.append(Step("split", name, "create", "after the steps above"))
            continue
        action = split_action(session, name, split_definition(spec, loaded.base_dir))
        if action != "unchanged":
            split_members(session, name, spec, loaded.base_dir)  # apply's own refusals (unknown words, overlap, sizes)
        steps.append(Step("split", name, action, f"item sets {name}.train and {name}.test"))
        waiting = waiting or action != "unchanged"
    return steps


def _finetune_steps(session: Session, loaded: LoadedStudy, waiting: bool) -> list[Step]:
    from workbench.finetune.run import finetune_status, tuned_rate_plan
    from workbench.study.finetune import finetune_run

    steps = []
    for name, spec in loaded.study.finetunes.items():
        what = f"{spec.backend}, train {spec.train}" + (f", then rate {spec.rate}" if spec.rate else "")
        if waiting:
            steps.append(Step("finetune", name, "train", f"{what}, after the steps above"))
            continue
        run = finetune_run(loaded, name)
        state = finetune_status(session, run)
        if state.status == "succeeded":
            if spec.rate:
                dry = tuned_rate_plan(session, run, state.model)
                if dry.requested:
                    steps.append(Step("finetune", name, "rate", f"trained; {dry.requested} of {dry.target} items to rate"))
                    continue
            steps.append(Step("finetune", name, "unchanged", f"job {state.job_id} succeeded: {state.model}"))
        elif state.status in ("failed", "cancelled"):
            steps.append(Step("finetune", name, "unchanged", f"job {state.job_id} {state.status}: {state.error}; "
                                                             f"`workbench finetune start {name} --restart` tries again"))  # fmt: skip
        elif state.status == "running":
            steps.append(Step("finetune", name, "train", f"{what}, resume job {state.job_id}"))
        else:
            steps.append(Step("finetune", name, "train", what))
    return steps
