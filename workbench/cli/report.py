"""workbench report: how close each rater comes to the gold norms, beside the human ceiling."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.options import DEFAULT_STUDY, Db, StudyPath, open_store, store_url, working
from workbench.errors import WorkbenchError
from workbench.files import check_output_file, writing


class ReportFormat(str, Enum):
    """The report's file format (a file, not printed rows: hence not table/csv/json)."""

    html = "html"
    md = "md"
    json = "json"


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
    fmt: Annotated[
        ReportFormat,
        typer.Option("--format", "-f", help="html (self-contained, with plots), md (plus PNGs) or json.", case_sensitive=False),
    ] = ReportFormat.html,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output file (default: report.html / report.md / report.json); its folder must exist."),
    ] = None,
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
    """Write a validation report: correlations with CIs, errors, bias, the human ceiling, plots."""
    fmt = fmt.value
    cal = None
    if calibrate:
        train, sep, test = calibrate.partition(":")
        if not sep or not train or not test:
            raise WorkbenchError(f"--calibrate {calibrate!r}: write it as TRAIN:TEST, two item sets.")
        cal = {"train": train, "test": test}
    path = check_output_file(out or Path(f"report.{fmt}"), "--out")
    from sqlalchemy.orm import Session

    from workbench.analysis.report import build_report, write_report

    declared = None
    if study.exists():  # the study's dimensions: not the eight more a Glasgow import brings
        from workbench.study.load import load_study

        declared = list(load_study(study).study.dimensions) or None
    with open_store(store_url(db, study)) as engine, Session(engine) as s, working("Computing the report"):
        rep, datas = build_report(s, dimension=dimension, dimensions=declared, gold=gold, raters=raters, items=items, n_boot=n_boot,
                                  seed=seed, calibrate=cal, intervals={"calibration": intervals} if intervals else None,
                                  ppi={"machine": ppi, "with": ppi_with or []} if ppi else None)  # fmt: skip
        with writing(path, "--out"):
            written = write_report(rep, datas, path, fmt)
    for part in rep.dimensions:
        typer.echo(f"{part.dimension}: {plural(len(part.raters), 'rater')}, {plural(len(part.gold), 'gold dataset')}")
        if part.coverage is not None and part.coverage.without_gold:
            c = part.coverage
            shown = ", ".join(row.item for row in c.rows[:10]) + (f" and {c.without_gold - 10} more" if c.without_gold > 10 else "")
            typer.echo(f"  {plural(c.without_gold, 'word')} without gold (values per rater in the report): {shown}")
        if part.scale_note:
            typer.echo(f"  {part.scale_note}")
        for row in part.ceiling:
            typer.echo(f"  ceiling  {row.rater} ~ {row.gold}: rho {_num(row.spearman)} (n {row.n})")
        for row in part.table:
            typer.echo(
                f"  {row.rater} ~ {row.gold}: rho {_num(row.spearman)} [{_num(row.spearman_ci[0])}, {_num(row.spearman_ci[1])}] (n {row.n})"
            )
        for p in part.ppi:
            what = "mean" if p.statistic == "mean" else f"correlation with {p.other}"
            typer.echo(f"  {what} ({p.n_labeled} human-rated, {p.n_unlabeled} machine only): naive {_num(p.naive.value)}, "
                       f"classical {_num(p.classical.value)}, ppi {_num(p.ppi.value)} [{_num(p.ppi.value_interval[0])}, {_num(p.ppi.value_interval[1])}]")  # fmt: skip
        for iv in part.intervals:
            cover = ", ".join(f"{c.level:.0%} -> {_num(c.covered)} (width {_num(c.mean_width)})" for c in iv.coverage)
            typer.echo(f"  intervals {iv.rater} (calibrated on {iv.calibration}, n {iv.n_calibration}): {cover}")
    typer.echo(f"Wrote {written[0].resolve()}" + (f" and {len(written) - 1} plots" if len(written) > 1 else ""))


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def register(app: typer.Typer) -> None:
    app.command()(report)
