"""workbench import | status | export: norms in and out of the store."""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.display import show, show_record, show_records, working
from workbench.cli.options import DEFAULT_STUDY, Db, Format, StudyPath, open_store, store_url
from workbench.errors import WorkbenchError
from workbench.files import check_output_file, writing
from workbench.ingest.presets import PRESETS, preset_specs
from workbench.ingest.spec import (
    DatasetSpec,
    RatingColumns,
    parse_rating_option,
    parse_rescale_option,
    parse_scale_option,
)
from workbench.output import OutputFormat, render

PRESET_HELP = "Known dataset layout: " + "; ".join(f"{p.name} ({p.description})" for p in PRESETS.values())


def import_(
    file: Annotated[Path, typer.Argument(help="CSV, TSV, .xlsx or Parquet file.")],
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Name of the dataset in the store.")] = None,
    as_rater: Annotated[
        str | None,
        typer.Option(
            "--as-rater", help="Import ratings produced elsewhere (another tool, an earlier run) as this rater, not as gold norms."
        ),
    ] = None,
    kind: Annotated[str, typer.Option(help="With --as-rater: llm or model.")] = "llm",
    preset: Annotated[str | None, typer.Option(help=PRESET_HELP)] = None,
    item_column: Annotated[str | None, typer.Option(help="Column with the items (without --preset).")] = None,
    rating: Annotated[
        list[str] | None,
        typer.Option(help="DIM=MEAN_COL[,sd=COL][,n=COL], once per dimension (without --preset)."),
    ] = None,
    scale: Annotated[
        list[str] | None,
        typer.Option(
            help="DIM=MIN:MAX: the scale the file's values are on (a rater's own scale, e.g. aoa=0:25 for years); "
            "values within rounding of a bound are set to it, others outside are refused."
        ),
    ] = None,
    rescale: Annotated[list[str] | None, typer.Option(help="DIM=FACTOR: multiply values after checking the scale.")] = None,
    language: Annotated[
        str, typer.Option(help="Language of the items (ISO 639 code); also tells code pages apart (pl, ru, tr, ...).")
    ] = "en",
    encoding: Annotated[
        str | None,
        typer.Option(
            help="Text encoding (default: detected among UTF-8, UTF-16 and common code pages, or refused when "
            "unclear; a file mixing UTF-8 and Windows-1252 lines, or with double-decoded UTF-8 like cafÃ©, is "
            "refused): utf-8, utf-16, cp1250, cp1251, cp1252, cp1253, cp1254, koi8-r, mac-roman, latin-1, ..., "
            "or mixed to read each line in its own encoding and repair double-decoded text."
        ),
    ] = None,
    na: Annotated[
        list[str] | None,
        typer.Option(
            "--na",
            help="A cell value that means 'no value', besides the built-in ones (empty, NA, N/A, #N/A and its "
            "spreadsheet spellings #N/D, #NV, #N/B, ...). Repeat for several: --na 0 --na -",
        ),
    ] = None,
    separator: Annotated[str | None, typer.Option(help="comma, tab or semicolon (default: detected).")] = None,
    decimal: Annotated[
        str,
        typer.Option(help="Decimal mark: . or , (for files with decimal commas). The other mark may only group thousands (1.500 with ,)."),
    ] = ".",
    sheet: Annotated[str | None, typer.Option(help="Sheet of an .xlsx workbook (default: the first).")] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import valid rows; write rejected rows with reasons to a file.")
    ] = False,
    rejects: Annotated[Path | None, typer.Option(help="Where --skip-invalid writes rejected rows.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Swap the ratings of a dataset imported before.")] = False,
    fmt: Format = OutputFormat.table,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Import a norm file, or a model's ratings (--as-rater).

    Name the layout with --preset, or the columns with --item-column and --rating.
    """
    from workbench.ingest.readers import separator_char

    if decimal not in (".", ","):
        raise WorkbenchError("--decimal must be . or ,")
    if bool(dataset) == bool(as_rater):
        raise WorkbenchError("Name what the file becomes: --dataset NAME for norms, or --as-rater NAME for a model's ratings.")
    if kind not in ("llm", "model"):
        raise WorkbenchError(f"--kind must be llm or model, not {kind!r}.")
    if as_rater and preset:
        raise WorkbenchError("--as-rater reads --item-column and --rating columns, not a --preset.")
    name = dataset or as_rater
    extra_na = tuple(dict.fromkeys(na or ()))
    sep = separator_char(separator) if separator is not None else None
    scales = dict(parse_scale_option(s) for s in scale or [])
    rescales = dict(parse_rescale_option(s) for s in rescale or [])
    if preset:
        if item_column or rating:
            raise WorkbenchError("Give --preset, or --item-column with --rating, not both.")
        specs = preset_specs(preset, name, language=language, rescale=rescales, scale=scales, decimal=decimal)
        if extra_na:
            specs = [dataclasses.replace(s, extra_na=extra_na) for s in specs]
    else:
        if not item_column or not rating:
            raise WorkbenchError(
                f"Say how to read the file: --preset NAME, or --item-column COL and --rating DIM=MEAN_COL (presets: {', '.join(PRESETS)})."
            )
        cols = [parse_rating_option(r) for r in rating]
        dims = {d for d, _ in cols}
        for d in [*scales, *rescales]:
            if d not in dims:
                raise WorkbenchError(f"--scale/--rescale name {d!r}, which no --rating declares.")
        specs = [
            DatasetSpec(
                name,
                item=(item_column,),
                ratings=tuple(
                    RatingColumns(
                        d,
                        mean=(c["mean"],),
                        sd=(c["sd"],) if "sd" in c else (),
                        n=(c["n"],) if "n" in c else (),
                        scale=scales.get(d),
                        rescale=rescales.get(d),
                    )
                    for d, c in cols
                ),
                language=language,
                decimal=decimal,
                extra_na=extra_na,
                rater_kind=kind if as_rater else "norm",
            )
        ]
    from sqlalchemy.orm import Session

    from workbench.ingest.load import import_file

    with open_store(store_url(db, study)) as engine, working(f"Importing {file.name}"):
        with Session(engine) as s, s.begin():
            results = import_file(
                s,
                file,
                specs,
                replace=replace,
                skip_invalid=skip_invalid,
                rejects_path=rejects,
                encoding=encoding,
                separator=sep,
                sheet=sheet,
            )
    show_records(fmt, results, [r.describe() for r in results])


def status(
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
    fmt: Format = OutputFormat.table,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """What is in the store: datasets, raters, item sets, jobs.

    Datasets (norms and word lists), dimensions, raters, item sets, recent jobs, item and rating counts.

    --format table prints one table per section; csv prints each section as a
    CSV block under a `# section` line; json prints one object.
    """
    from sqlalchemy.orm import Session

    from workbench.store.summary import summarise
    from workbench.store.urls import redact_url

    url = store_url(db, study)
    with open_store(url) as engine, Session(engine) as s:
        summary = summarise(s)
    if as_json or fmt is OutputFormat.json:
        show(OutputFormat.json, document={"store": redact_url(url), **summary.__dict__})
        return
    sections = [
        ("Datasets", ["dataset", "kind", "preset", "language", "items", "ratings", "dimensions"],
         [[d["name"], d["kind"], d["preset"], d["language"], d["items"], d["ratings"], ", ".join(d["dimensions"])]
          for d in summary.datasets]),
        ("Dimensions", ["dimension", "scale_min", "scale_max", "ratings"],
         [[d["name"], *d["scale"], d["ratings"]] for d in summary.dimensions]),
        ("Raters", ["rater", "kind", "items", "ratings"],
         [[r["name"], r["kind"], r["items"], r["ratings"]] for r in summary.raters]),
        ("Item sets", ["item_set", "items"], [[i["name"], i["items"]] for i in summary.item_sets]),
        ("Recent rating jobs", ["job", "rater", "backend", "status", "rated", "failed", "cost", "started"],
         [[j["id"], j["rater"], j["backend"], j["status"], j["rated"], j["failed"], j["cost"], j["started"]] for j in summary.jobs]),
    ]  # fmt: skip
    if fmt is OutputFormat.csv:
        blocks = [f"# store\r\n{render(['store', 'items', 'ratings'], [[redact_url(url), summary.items, summary.ratings]], fmt)}"]
        blocks += [f"# {title.lower()}\r\n{render(header, rows, fmt)}" for title, header, rows in sections]
        typer.echo("\r\n".join(blocks), nl=False)
        return
    typer.echo(f"{redact_url(url)}: {summary.items} items, {summary.ratings} ratings")
    for title, header, rows in sections:
        if title != "Recent rating jobs":  # a missing preset or cost is "-" to a reader, not SQL's NULL
            rows = [[("-" if cell is None or cell == "" else cell) for cell in row] for row in rows]
        if not rows and title in ("Item sets", "Recent rating jobs"):
            continue
        typer.echo("")
        typer.echo(f"{title}:" if rows else f"{title}: none")
        if rows:
            show(fmt, header, rows)


class ExportFormat(str, Enum):
    """The exported file's format (chosen by -o's suffix, or --as)."""

    csv = "csv"
    parquet = "parquet"


EXPORT_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (.csv or .parquet); its folder must exist.")],
    dataset: Annotated[list[str] | None, typer.Option(help="Export this dataset's ratings; repeat for several.")] = None,
    rater: Annotated[list[str] | None, typer.Option(help="Export this rater's ratings; repeat for several.")] = None,
    dimension: Annotated[str | None, typer.Option(help="Only this dimension.")] = None,
    items: Annotated[
        str | None, typer.Option(help="Only these items: an item set, dataset or word list (with --wide: a row for each, rated or not).")
    ] = None,
    as_: Annotated[
        ExportFormat | None,
        typer.Option("--as", help="csv or parquet (default: from -o's suffix; csv for any other suffix).", case_sensitive=False),
    ] = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="One row per item; a column per rater and dimension, with its sd, n, mass and note beside it.")
    ] = False,
    digits: Annotated[int, typer.Option(min=0, max=15, help="Decimal places of values, sds and masses.")] = 3,
    fmt: Format = OutputFormat.table,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Export ratings as CSV or Parquet, with a data dictionary.

    A wide export (--wide) has one row per item and a column per rater and dimension; a missing value
    is NA. FILE_STEM.dictionary.csv describes every column.
    """
    from sqlalchemy.orm import Session

    from workbench.analysis.export import dictionary_path, export_ratings

    kind = as_.value if as_ else EXPORT_SUFFIXES.get(out.suffix.lower(), "csv")
    if not dataset and not rater and not items:
        raise WorkbenchError("Say what to export: --dataset NAME or --rater NAME (repeat either for several), or --items NAME with --wide.")
    check_output_file(out, "--out")
    with open_store(store_url(db, study)) as engine, Session(engine) as s, writing(out, "--out"):
        n = export_ratings(s, dataset=dataset, rater=rater, dimension=dimension, items=items, fmt=kind, path=out, wide=wide, digits=digits)
    line = f"Wrote {n} rows to {out}; its data dictionary: {dictionary_path(out)}."
    show_record(fmt, {"rows": n, "file": str(out), "format": kind, "dictionary": str(dictionary_path(out))}, [line])


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
    app.command()(status)
    app.command()(export)
