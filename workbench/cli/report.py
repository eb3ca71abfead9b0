"""workbench report: how close each rater comes to the gold norms, beside the human ceiling."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.display import show, working
from workbench.cli.options import DEFAULT_STUDY, Db, Format, StudyPath, open_store, study_and_store
from workbench.errors import WorkbenchError
from workbench.files import check_output_file, writing
from workbench.output import OutputFormat, plural


class ReportFormat(str, Enum):
    """The report file's format (chosen by -o's suffix, or --as): -f/--format is how the summary is printed."""

    html = "html"
    md = "md"
    json = "json"


REPORT_SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".json": "json"}


def file_format(out: Path | None, chosen: Enum | None, suffixes: dict[str, str], default: str) -> str:
    """A written file's format: --as when given, else -o's suffix, else the default (without -o)."""
    if chosen is not None:
        return chosen.value
    if out is None:
        return default
    fmt = suffixes.get(out.suffix.lower())
    if fmt is None:
        known = ", ".join(dict.fromkeys(suffixes))
        raise WorkbenchError(f"--out {out}: say the file's format with a suffix ({known}) or with --as.")
    return fmt


SUMMARY_COLUMNS = ("dimension", "row", "rater", "gold", "spearman", "ci_low", "ci_high", "n")


def report(
    dimension: Annotated[str | None, typer.Option(help="Only this dimension (default: all with ratings).")] = None,
    gold: Annotated[
        list[str] | None, typer.Option("--gold", help="Gold dataset; repeat for several (default: every norm dataset).")
    ] = None,
    raters: Annotated[
        list[str] | None,
        typer.Option("--rater", help="Rater; repeat for several: --rater a --rater b (default: every LLM and model rater)."),
    ] = None,
    items: Annotated[str | None, typer.Option(help="Restrict to an item set or a dataset's items.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output file: .html (self-contained, with plots), .md (plus PNGs) or .json (default: report.html); its folder must exist.",
        ),
    ] = None,
    as_: Annotated[
        ReportFormat | None,
        typer.Option(
            "--as", help="The file's format when -o has no such suffix, or to override it (default: from -o).", case_sensitive=False
        ),
    ] = None,
    fmt: Format = OutputFormat.table,
    calibrate: Annotated[str | None, typer.Option(help="TRAIN:TEST item sets: fit rater -> gold on TRAIN, report on TEST.")] = None,
    intervals: Annotated[
        str | None,
        typer.Option(help="Item set to calibrate each rater's conformal intervals on (not the reported items: give --items)."),
    ] = None,
    ppi: Annotated[
        str | None,
        typer.Option(
            help="Machine rater for prediction-powered statistics: the mean of the first gold over all words, and its correlations."
        ),
    ] = None,
    ppi_with: Annotated[
        list[str] | None, typer.Option("--ppi-with", help="Variable (a rater or gold) to correlate the norm with; repeat for several.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap (same seed, same report).")] = 0,
    n_boot: Annotated[int, typer.Option("--n-boot", min=100, help="Bootstrap resamples for the confidence intervals.")] = 1000,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Write a validation report: correlations with CIs, errors, bias, the human ceiling, plots.

    The file's format comes from -o's suffix (or --as); -f/--format is how the summary is printed.
    """
    if out is not None:
        check_output_file(out, "--out")  # a folder, or a missing one, is said before the suffix
    kind = file_format(out, as_, REPORT_SUFFIXES, "html")
    cal = None
    if calibrate:
        train, sep, test = calibrate.partition(":")
        if not sep or not train or not test:
            raise WorkbenchError(f"--calibrate {calibrate!r}: write it as TRAIN:TEST, two item sets.")
        cal = {"train": train, "test": test}
    path = check_output_file(out or Path(f"report.{kind}"), "--out")
    from sqlalchemy.orm import Session

    from workbench.analysis.report import build_report, write_report

    loaded, url = study_and_store(study, db, required=False)
    declared = (list(loaded.study.dimensions) or None) if loaded is not None else None  # not the eight more a Glasgow import brings
    with open_store(url) as engine, Session(engine) as s, working("Computing the report"):
        rep, datas = build_report(s, dimension=dimension, dimensions=declared, gold=gold, raters=raters, items=items, n_boot=n_boot,
                                  seed=seed, calibrate=cal, intervals={"calibration": intervals} if intervals else None,
                                  ppi={"machine": ppi, "with": ppi_with or []} if ppi else None)  # fmt: skip
        with writing(path, "--out"):
            written = write_report(rep, datas, path, kind)
    lines: list[str] = []
    rows: list[list] = []
    for part in rep.dimensions:
        rows += [[part.dimension, "ceiling", r.rater, r.gold, r.spearman, None, None, r.n] for r in part.ceiling]
        rows += [[part.dimension, "rater", r.rater, r.gold, r.spearman, r.spearman_ci[0], r.spearman_ci[1], r.n] for r in part.table]
        lines.append(f"{part.dimension}: {plural(len(part.raters), 'rater')}, {plural(len(part.gold), 'gold dataset')}")
        if part.coverage is not None and part.coverage.without_gold:
            c = part.coverage
            shown = ", ".join(row.item for row in c.rows[:10]) + (f" and {c.without_gold - 10} more" if c.without_gold > 10 else "")
            lines.append(f"  {plural(c.without_gold, 'word')} without gold (values per rater in the report): {shown}")
        if part.scale_note:
            lines.append(f"  {part.scale_note}")
        for row in part.ceiling:
            lines.append(f"  ceiling  {row.rater} ~ {row.gold}: rho {_num(row.spearman)} (n {row.n})")
        for row in part.table:
            lines.append(
                f"  {row.rater} ~ {row.gold}: rho {_num(row.spearman)} [{_num(row.spearman_ci[0])}, {_num(row.spearman_ci[1])}] (n {row.n})"
            )
        for p in part.ppi:
            what = "mean" if p.statistic == "mean" else f"correlation with {p.other}"
            lines.append(f"  {what} ({p.n_labeled} human-rated, {p.n_unlabeled} machine only): naive {_num(p.naive.value)}, "
                       f"classical {_num(p.classical.value)}, ppi {_num(p.ppi.value)} [{_num(p.ppi.value_interval[0])}, {_num(p.ppi.value_interval[1])}]")  # fmt: skip
        for iv in part.intervals:
            cover = ", ".join(f"{c.level:.0%} -> {_num(c.covered)} (width {_num(c.mean_width)})" for c in iv.coverage)
            lines.append(f"  intervals {iv.rater} (calibrated on {iv.calibration}, n {iv.n_calibration}): {cover}")
    lines.append(f"Wrote {written[0].resolve()}" + (f" and {len(written) - 1} plots" if len(written) > 1 else ""))
    document = {"file": str(written[0].resolve()), "format": kind, "plots": [str(p.resolve()) for p in written[1:]],
                "rows": [dict(zip(SUMMARY_COLUMNS, r)) for r in rows]}  # fmt: skip
    show(fmt, SUMMARY_COLUMNS, rows, lines=lines, document=document)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def register(app: typer.Typer) -> None:
    app.command()(report)
