"""workbench init | validate | plan | apply: the study file."""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.display import describe, exit_if_failed, note, progress_bar, run_document, show
from workbench.cli.options import DEFAULT_STUDY, Db, Format, StudyPath, open_store, study_and_store
from workbench.errors import WorkbenchError
from workbench.files import ensure_output_folder, writing
from workbench.output import OutputFormat

STEP_COLUMNS = ("kind", "name", "action", "detail")


def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new study (created inside an existing folder).")],
    fmt: Format = OutputFormat.table,
) -> None:
    """Scaffold a study: study.yaml (with comments), prompts/ and data/."""
    target = directory / "study.yaml"
    if target.exists():
        raise WorkbenchError(f"{target} already exists: choose another folder or edit it.")
    template = resources.files("workbench") / "templates" / "study"
    ensure_output_folder(directory, "init")
    with writing(directory, "init"):
        (directory / "prompts").mkdir(exist_ok=True)
        (directory / "data").mkdir(exist_ok=True)
        text = (template / "study.yaml").read_text(encoding="utf-8")
        name = "".join(c if c.isalnum() or c in "-_." else "-" for c in directory.resolve().name).strip("-.") or "my-study"
        target.write_text(text.replace("study: my-study", f"study: {name}"), encoding="utf-8")
        from workbench.study.schema import render as render_schema

        (directory / "study.schema.json").write_text(render_schema(), encoding="utf-8")
        prompt = directory / "prompts" / "familiarity.txt"
        if not prompt.exists():
            with resources.as_file(template / "prompts" / "familiarity.txt") as src:
                shutil.copyfile(src, prompt)
    made = {"study": str(target), "schema": str(directory / "study.schema.json"), "prompts": str(directory / "prompts"),
            "data": str(directory / "data")}  # fmt: skip
    lines = [
        f"Created {target} (its schema: {directory / 'study.schema.json'}), {directory / 'prompts'}/ and {directory / 'data'}/.",
        f"Next: put norm files in {directory / 'data'}/, declare them under `datasets:`, then run",
        f"  workbench plan --study {target}",
    ]
    show(fmt, list(made), [list(made.values())], lines=lines, document=made)


def validate(study: StudyPath = DEFAULT_STUDY, fmt: Format = OutputFormat.table) -> None:
    """Check the study and read its files as apply would.

    Every check apply makes before it writes: the schema, each dataset and word list file (encoding,
    columns, values, scales, items), the names item sets, splits and raters use, and the raters' items.
    """
    from workbench.output import plural
    from workbench.study.check import check_study
    from workbench.study.load import load_study

    loaded = load_study(study)
    s = loaded.study
    checks = check_study(loaded)
    lines = []
    for c in checks.datasets:
        where = f"{c.file} (outside the study folder)" if c.outside else c.file
        rejected = f", {c.rejected_rows} rows rejected" if c.rejected_rows else ""
        lines.append(f"  dataset {c.name}: {c.items} items, {c.ratings} ratings from {where}{rejected}")
    for w in checks.word_lists:
        where = f"{w.file} (outside the study folder)" if w.outside else w.file
        attrs = f" (attributes {', '.join(w.attributes)})" if w.attributes else ""
        lines.append(f"  word list {w.name}: {plural(w.words, 'word')}{attrs} from {where}")
    counts = [plural(len(s.dimensions), "dimension"), plural(len(s.datasets), "dataset")]
    if s.word_lists:
        counts.append(plural(len(s.word_lists), "word list"))
    lines.append(f"{study}: valid ({', '.join(counts)}).")
    columns = ("kind", "name", "file", "outside", "items", "ratings", "rejected_rows", "words", "attributes")
    rows = [["dataset", c.name, c.file, c.outside, c.items, c.ratings, c.rejected_rows, None, None] for c in checks.datasets]
    rows += [["word list", w.name, w.file, w.outside, None, None, None, w.words, w.attributes] for w in checks.word_lists]
    document = {"study": str(study), "valid": True, "dimensions": list(s.dimensions),
                "datasets": [dict(zip(columns[1:7], r[1:7])) for r in rows if r[0] == "dataset"],
                "word_lists": [{"name": w.name, "file": w.file, "outside": w.outside, "words": w.words, "attributes": w.attributes}
                               for w in checks.word_lists]}  # fmt: skip
    show(fmt, columns, rows, lines=lines, document=document)


def plan(study: StudyPath = DEFAULT_STUDY, db: Db = None, fmt: Format = OutputFormat.table) -> None:
    """Show what `apply` would do, without touching the store.

    One row per step (kind, name, action, detail); --format json prints them as an array of objects.
    """
    from sqlalchemy.orm import Session

    from workbench.study.apply import make_plan

    loaded, url = study_and_store(study, db)
    with open_store(url) as engine, Session(engine) as s:
        p = make_plan(s, loaded, estimate_costs=True)
    lines = ["  " + step.describe() for step in p.steps]
    lines += [f"  keep      dataset {name}  (in the store, not in the study)" for name in p.undeclared]
    if p.changes:
        lines.append(f"{len(p.changes)} to do. Run `workbench apply` to do it.")
    else:
        lines.append("Nothing to do: the store matches the study.")
    rows = p.rows()  # kind, name, action, detail: the plan as data
    show(fmt, STEP_COLUMNS, [[r[c] for c in STEP_COLUMNS] for r in rows], lines=lines)


def apply(
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
    wait: Annotated[
        float,
        typer.Option("--wait", min=0, help="Seconds to wait for another apply running on the same store before giving up."),
    ] = 10.0,
    fmt: Format = OutputFormat.table,
) -> None:
    """Make the store match the study file; resumes where it stopped.

    One apply at a time per store: a second one waits up to --wait seconds, then says which is running.
    Exits with code 2 when a rater's job left failed items (the next apply retries them), or when a
    fine-tune failed or was cancelled (`workbench finetune start NAME --restart` tries again).
    """
    from workbench.study.apply import apply_study

    loaded, url = study_and_store(study, db)
    say = note(fmt)  # the steps as they are done: stdout for people, stderr when stdout is csv or json
    done = 0
    rows: list[list] = []
    runs: list[dict] = []
    finetunes: list[dict] = []

    def report(step, results):
        nonlocal done
        if step.action == "unchanged":
            return
        done += 1
        rows.append([step.row()[c] for c in STEP_COLUMNS])
        if results:
            for r in results:
                say("  " + r.describe())
        else:
            past = {"create": "created", "update": "updated", "write": "written", "import": "imported", "replace": "replaced"}.get(
                step.action, step.action
            )
            detail = f" ({step.detail})" if step.detail and step.kind in ("item set", "split", "report", "word list", "hybrid") else ""
            say(f"  {step.kind} {step.name}: {past}{detail}")

    failed = 0

    def rated(rep) -> None:
        nonlocal done, failed
        failed += rep.failed
        if rep.job_id is not None:
            done += 1
            runs.append(run_document(rep))
            rows.append(["rating job", rep.rater, rep.status, describe(rep)[0]])
            for line in describe(rep):
                say("  " + line)

    unfinished: list[str] = []

    def tuned(ft) -> None:
        finetunes.append({"name": ft.name, "backend": ft.backend, "status": ft.status, "job": ft.job_id, "model": ft.model,
                          "error": ft.error})  # fmt: skip
        if ft.status in ("failed", "cancelled"):
            unfinished.append(f"fine-tune {ft.name} {ft.status}: {ft.error or 'no reason given'}; "
                              f"`workbench finetune start {ft.name} --restart` tries again.")  # fmt: skip

    with open_store(url) as engine, ExitStack() as stack:
        bars = lambda name: stack.enter_context(progress_bar(f"Rating with {name}"))  # noqa: E731
        apply_study(engine, loaded, on_step=report, on_rater=rated, on_rate_progress=bars,
                    on_finetune_event=lambda message: say("  " + message), on_finetune=tuned, wait_s=wait)  # fmt: skip
    summary = f"Applied {done} changes." if done else "Nothing to do: the store matches the study."
    document = {"changes": done, "steps": [dict(zip(STEP_COLUMNS, r)) for r in rows], "rating_jobs": runs, "finetunes": finetunes}
    show(fmt, STEP_COLUMNS, rows, lines=[summary], document=document)
    exit_if_failed(failed, unfinished)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(validate)
    app.command()(plan)
    app.command()(apply)
