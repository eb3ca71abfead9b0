"""Running one of a study's raters: find it by name, hand the job runner what the run needs."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError, did_you_mean
from workbench.jobs.runner import Progress, RaterRun, RunReport
from workbench.jobs.runner import run_rater as run_job
from workbench.jobs.runner import run_rater_dry as dry_run_job
from workbench.raters.backend import ResolvedRater
from workbench.raters.config import resolve_rater
from workbench.study.load import LoadedStudy


def rater_run(loaded: LoadedStudy, name: str) -> RaterRun:
    """The study's rater ``name``, with the dimensions and folder it is resolved against."""
    study = loaded.study
    if name not in study.raters:
        known = ", ".join(study.raters) or "none"
        raise WorkbenchError(f"{loaded.path}: no rater named {name!r} (the study's raters: {known}).{did_you_mean(name, study.raters)}")
    return RaterRun(name, study.raters[name], tuple(study.dimensions), loaded.base_dir)


def run_rater(
    engine: Engine,
    loaded: LoadedStudy,
    name: str,
    *,
    items: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    check_server: bool = False,
    on_progress: Progress | None = None,
    backoff_base: float = 1.0,
    commit_every: int = 64,
) -> RunReport:
    """Rate every item the study's rater ``name`` has not rated yet (or, dry, say what that would take)."""
    return run_job(
        engine, rater_run(loaded, name), items=items, limit=limit, dry_run=dry_run, check_server=check_server, on_progress=on_progress,
        backoff_base=backoff_base, commit_every=commit_every,
    )  # fmt: skip


def run_rater_dry(session: Session, loaded: LoadedStudy, name: str, *, items: str | None = None, limit: int | None = None) -> RunReport:
    """What rating with the study's rater ``name`` would take; sends and stores nothing."""
    return dry_run_job(session, rater_run(loaded, name), items=items, limit=limit)


def resolve(session: Session, loaded: LoadedStudy, name: str) -> ResolvedRater:
    """The study's rater ``name`` resolved against the store: its identity, its filled prompt."""
    run = rater_run(loaded, name)
    return resolve_rater(session, run.name, run.options, dimensions=list(run.dimensions), base_dir=run.base_dir)


SCRATCH_NOTE = (
    "The store does not hold this rater's dimension yet (the study is not applied): estimated on a scratch copy "
    "of the study's dimensions, datasets and item sets; nothing was written to the store."
)


STALE_NOTE = (
    "The store is behind the study ({n} steps for apply to make first: {steps}): estimated on a scratch copy of the "
    "study's dimensions, datasets, word lists and item sets, as if nothing were rated yet; nothing was written to the store."
)


def dry_run_rater(url: str, loaded: LoadedStudy, name: str, *, items: str | None = None, limit: int | None = None,
                  check_server: bool = False) -> RunReport:  # fmt: skip
    """What rating with ``name`` would take, changing nothing: not even creating the store.

    Against the store when it holds the rater's dimension; before the first
    ``apply`` (no store yet, or no such dimension in it), against a scratch
    store in a temporary folder, into which the study's dimensions, datasets
    and item sets are applied first.
    """
    import tempfile

    from workbench.store import connect
    from workbench.study.apply import apply_study, make_plan

    run = rater_run(loaded, name)
    # what comes before the raters: item sets ranked by the raters' own ratings come after them
    before = {n: spec for n, spec in loaded.study.item_sets.items() if spec.uncertainty is None}
    bare = LoadedStudy(
        loaded.path, loaded.study.model_copy(update={"raters": {}, "reports": {}, "finetunes": {}, "hybrids": {}, "item_sets": before})
    )
    note = SCRATCH_NOTE
    if _store_has_dimension(url, _dimension_of(run)):
        engine = connect(url)
        try:
            with Session(engine) as s:
                behind = make_plan(s, bare).changes  # what apply would still make before the raters run
            if not behind:
                return run_job(engine, run, items=items, limit=limit, dry_run=True, check_server=check_server)
        finally:
            engine.dispose()
        note = STALE_NOTE.format(n=len(behind), steps="; ".join(f"{st.kind} {st.name}" for st in behind[:5]))
    with tempfile.TemporaryDirectory(prefix="workbench-dry-run-") as tmp:
        scratch = connect(f"sqlite:///{tmp}/scratch.db")
        try:
            apply_study(scratch, bare)
            report = run_job(scratch, run, items=items, limit=limit, dry_run=True, check_server=check_server)
        finally:
            scratch.dispose()
    report.notes.insert(0, note)
    return report


def _dimension_of(run: RaterRun) -> str | None:
    dimension = getattr(run.options, "dimension", None)
    if dimension is None and len(run.dimensions) == 1:
        dimension = run.dimensions[0]
    return dimension


def _store_has_dimension(url: str, dimension: str | None) -> bool:
    """True when the store exists, has its tables, and (when known) holds the dimension. Creates nothing."""
    from pathlib import Path

    from sqlalchemy import inspect, select
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from workbench.store.engine import make_engine
    from workbench.store.models import Dimension

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or not Path(database).exists():
            return False
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            if not inspect(c).has_table(Dimension.__tablename__):
                return False
            if dimension is None:
                return True
            return c.execute(select(Dimension.id).where(Dimension.name == dimension)).first() is not None
    except DBAPIError:
        return True  # let the usual open say what is wrong with the store
    finally:
        engine.dispose()
