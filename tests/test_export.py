"""Exporting ratings to CSV and Parquet, long and wide, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.analysis.export import export_ratings
from workbench.errors import WorkbenchError
from workbench.ingest.load import import_file
from workbench.ingest.presets import preset_specs
from workbench.store import Dimension, Item, Rater, Rating, bump_generation

LONG = ["item", "language", "dimension", "rater", "value", "sd", "n", "replicate", "mass", "note"]


@pytest.fixture
def store(engine, shared_data):
    with Session(engine) as s, s.begin():
        import_file(s, shared_data / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx", preset_specs("glasgow_mrc", "toolbox"))
    return engine


def _store_rows(engine, rater: str | None = None) -> dict[tuple, tuple]:
    """(item, dimension, rater, replicate) -> (value, sd, n), straight from the store."""
    query = (
        select(Item.text, Dimension.name, Rater.name, Rating.replicate, Rating.value, Rating.sd, Rating.n)
        .join(Item, Item.id == Rating.item_id)
        .join(Dimension, Dimension.id == Rating.dimension_id)
        .join(Rater, Rater.id == Rating.rater_id)
    )
    if rater:
        query = query.where(Rater.name == rater)
    with Session(engine) as s:
        return {tuple(r[:4]): tuple(r[4:]) for r in s.execute(query)}


def _read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _export(engine, **kwargs) -> int:
    with Session(engine) as s:
        return export_ratings(s, **kwargs)


def test_long_csv_round_trip(store, tmp_path):
    out = tmp_path / "ratings.csv"
    assert _export(store, fmt="csv", path=out) == 5090
    assert out.read_text(encoding="utf-8").splitlines()[0] == ",".join(LONG)
    rows = _read_csv(out)
    assert len(rows) == 5090
    got = {
        (r["item"], r["dimension"], r["rater"], int(r["replicate"])): (
            float(r["value"]),
            float(r["sd"]) if r["sd"] else None,
            int(r["n"]) if r["n"] else None,
        )
        for r in rows
    }
    assert got == _store_rows(store)
    assert {r["language"] for r in rows} == {"en"}
    assert list(tmp_path.glob(".*.tmp")) == []


def test_long_parquet_round_trip_with_filters(store, tmp_path):
    out = tmp_path / "mrc.parquet"
    assert _export(store, dataset="toolbox-mrc", dimension="familiarity", fmt="parquet", path=out) == 2545
    table = pq.read_table(out)
    assert table.column_names == LONG
    assert str(table.schema.field("value").type) == "double" and str(table.schema.field("n").type) == "int64"
    got = {(r["item"], r["dimension"], r["rater"], r["replicate"]): (r["value"], r["sd"], r["n"]) for r in table.to_pylist()}
    assert got == _store_rows(store, "toolbox-mrc")
    assert got[("abdomen", "familiarity", "toolbox-mrc", 0)] == (4.26, None, None)
    assert _export(store, rater="toolbox-glasgow", fmt="parquet", path=out) == 2545
    assert set(pq.read_table(out).column("rater").to_pylist()) == {"toolbox-glasgow"}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_wide_export(store, tmp_path, fmt):
    out = tmp_path / f"wide.{fmt}"
    assert _export(store, dataset="toolbox-glasgow", fmt=fmt, path=out, wide=True) == 2545
    if fmt == "csv":
        rows = _read_csv(out)
        assert list(rows[0]) == ["item", "language", "toolbox-glasgow.familiarity"]
        got = {r["item"]: float(r["toolbox-glasgow.familiarity"]) for r in rows}
    else:
        table = pq.read_table(out)
        assert table.column_names == ["item", "language", "toolbox-glasgow.familiarity"]
        got = {r["item"]: r["toolbox-glasgow.familiarity"] for r in table.to_pylist()}
    expected = {k[0]: v[0] for k, v in _store_rows(store, "toolbox-glasgow").items()}
    assert got == expected
    assert got["abdomen"] == 4.636


def test_wide_averages_replicates_and_keeps_utf8(store, tmp_path):
    with Session(store) as s, s.begin():
        dims = {d.name: d for d in s.scalars(select(Dimension))}
        dims["valence"] = Dimension(name="valence", scale_min=1, scale_max=9)
        cafe = Item(text="café", language="fr")
        llm = Rater(name="gpt-test", kind="llm")
        s.add_all([dims["valence"], cafe, llm])
        s.flush()
        abdomen = s.scalar(select(Item).where(Item.text == "abdomen"))
        for replicate, (fam, val) in enumerate([(4.0, 6.0), (5.0, None)]):
            s.add(Rating(item_id=abdomen.id, dimension_id=dims["familiarity"].id, rater_id=llm.id, replicate=replicate, value=fam))
            s.add(Rating(item_id=cafe.id, dimension_id=dims["valence"].id, rater_id=llm.id, replicate=replicate, value=val))
        bump_generation(s)

    out = tmp_path / "llm.csv"
    assert _export(store, rater="gpt-test", fmt="csv", path=out, wide=True) == 2
    assert out.read_bytes().decode("utf-8") == (
        "item,language,gpt-test.familiarity,gpt-test.familiarity.sd,gpt-test.familiarity.n,gpt-test.valence,gpt-test.valence.n\r\n"
        "abdomen,en,4.5,0.7071067811865476,2,NA,NA\r\n"
        "café,fr,NA,NA,NA,6.0,1\r\n"
    )
    assert _export(store, rater="gpt-test", fmt="csv", path=out) == 4
    assert out.read_text(encoding="utf-8").splitlines()[1:] == [
        "abdomen,en,familiarity,gpt-test,4.0,,,0,,",
        "abdomen,en,familiarity,gpt-test,5.0,,,1,,",
        "café,fr,valence,gpt-test,6.0,,,0,,",
        "café,fr,valence,gpt-test,,,,1,,",
    ]


def test_wide_export_of_several_raters_has_a_column_per_rater(store, tmp_path):
    out = tmp_path / "wide.csv"
    assert _export(store, dataset=["toolbox-glasgow", "toolbox-mrc"], fmt="csv", path=out, wide=True, digits=1) == 2545
    rows = _read_csv(out)
    assert list(rows[0]) == ["item", "language", "toolbox-glasgow.familiarity", "toolbox-mrc.familiarity"]
    abdomen = next(r for r in rows if r["item"] == "abdomen")
    assert (abdomen["toolbox-glasgow.familiarity"], abdomen["toolbox-mrc.familiarity"]) == ("4.6", "4.3")  # 4.636, 4.26
    dictionary = _read_csv(tmp_path / "wide.dictionary.csv")
    assert [d["column"] for d in dictionary] == list(rows[0])
    assert dictionary[2]["rater"] == "toolbox-glasgow" and dictionary[2]["scale"] == "1-7"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"dataset": "glasgow"},
            r"Unknown dataset 'glasgow'\. Did you mean 'toolbox-glasgow'\? The store's datasets are toolbox-glasgow, toolbox-mrc\.",
        ),
        ({"rater": "gpt"}, r"Unknown rater 'gpt'\. The store's raters are toolbox-glasgow, toolbox-mrc\."),
        ({"dimension": "valence"}, r"Unknown dimension 'valence'\. The store's dimensions are familiarity\."),
    ],
)
def test_unknown_names_are_listed(store, tmp_path, kwargs, message):
    with pytest.raises(WorkbenchError, match=message):
        _export(store, fmt="csv", path=tmp_path / "out.csv", **kwargs)
    assert list(tmp_path.glob("*.csv")) == [] and list(tmp_path.glob(".*.tmp")) == []


def test_replaces_existing_file_and_refuses_missing_folder(store, tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("old contents\n")
    assert _export(store, dataset="toolbox-mrc", fmt="csv", path=out) == 2545
    assert out.read_text(encoding="utf-8").startswith("item,language,")
    assert list(tmp_path.glob(".*.tmp")) == []
    with pytest.raises(WorkbenchError, match="does not exist"):
        _export(store, fmt="csv", path=tmp_path / "missing" / "out.csv")
    with pytest.raises(WorkbenchError, match="choose csv or parquet"):
        _export(store, fmt="xlsx", path=out)


def test_the_cli_takes_the_file_format_from_the_suffix_or_as_and_f_is_the_printed_format(store, db_url, tmp_path):
    """`export` and `report` choose the file's format from -o's suffix (or --as); -f/--format only says how the
    command prints what it did."""
    import json

    from typer.testing import CliRunner

    from workbench.cli.main import app

    def cli(*args, code=0):
        result = CliRunner().invoke(app, [*map(str, args), "--db", db_url])
        assert result.exit_code == code, result.output
        return result

    cli("export", "--dataset", "toolbox-mrc", "-o", tmp_path / "a.parquet")
    assert pq.read_table(tmp_path / "a.parquet").num_rows == 2545
    cli("export", "--dataset", "toolbox-mrc", "-o", tmp_path / "b.data", "--as", "parquet")  # no known suffix: --as says it
    assert pq.read_table(tmp_path / "b.data").num_rows == 2545
    done = json.loads(cli("export", "--dataset", "toolbox-mrc", "-o", tmp_path / "c.csv", "-f", "json").stdout)
    assert done == {"rows": 2545, "file": str(tmp_path / "c.csv"), "format": "csv", "dictionary": str(tmp_path / "c.dictionary.csv")}
    assert len(_read_csv(tmp_path / "c.csv")) == 2545
    assert (
        cli("export", "--dataset", "toolbox-mrc", "-o", tmp_path / "d.csv", "-f", "parquet", code=2).exit_code == 2
    )  # -f: not a file format
    summary = json.loads(cli("report", "-o", tmp_path / "r.json", "--n-boot", "100", "-f", "json").stdout)
    assert summary["format"] == "json" and json.loads((tmp_path / "r.json").read_text())["dimensions"]
    cli("report", "-o", tmp_path / "r.txt", "--as", "md", "--n-boot", "100")
    assert (tmp_path / "r.txt").read_text().startswith("#")
    err = cli("report", "-o", tmp_path / "r.out", "--n-boot", "100", code=1).stderr
    assert err == f"Error: --out {tmp_path / 'r.out'}: say the file's format with a suffix (.html, .htm, .md, .json) or with --as.\n"
