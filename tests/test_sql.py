"""`workbench sql`: DuckDB over a snapshot of the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from scipy.stats import spearmanr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workbench.analysis.duck import (
    SNAPSHOT_FORMAT,
    _fetch_adbc,
    _fetch_sqlalchemy,
    _source_queries,
    format_result,
    open_snapshot,
    run_sql,
    snapshot_path,
)
from workbench.errors import WorkbenchError
from workbench.ingest.load import import_file
from workbench.ingest.presets import preset_specs
from workbench.store import (
    Call,
    Dataset,
    DatasetItem,
    Dimension,
    Item,
    ItemAttribute,
    Job,
    Rater,
    Rating,
    bump_generation,
    connect,
    generation,
    store_id,
)

COLUMNS = {
    "items": ["item_id", "item", "language"],
    "dimensions": ["dimension_id", "dimension", "scale_min", "scale_max"],
    "datasets": [
        "dataset_id",
        "dataset",
        "preset",
        "language",
        "citation",
        "licence",
        "origin_file",
        "checksum",
        "imported_at",
    ],
    "raters": ["rater_id", "rater", "kind", "dataset"],
    "ratings": [
        "item",
        "language",
        "dimension",
        "rater",
        "rater_kind",
        "dataset",
        "replicate",
        "value",
        "sd",
        "n",
        "mass",
        "note",
        "answer",
        "item_id",
        "rater_id",
        "dimension_id",
    ],
    "word_list_items": ["dataset", "item", "language", "position", "dataset_id", "item_id"],
    "item_attributes": ["dataset", "item", "language", "key", "value", "dataset_id", "item_id"],
    "jobs": [
        "job_id",
        "kind",
        "status",
        "rater",
        "dataset",
        "config",
        "counts",
        "cost",
        "error",
        "external_id",
        "started_at",
        "finished_at",
        "rater_id",
        "dataset_id",
    ],
    "calls": [
        "call_id",
        "job_id",
        "rater",
        "item",
        "attempt",
        "status",
        "http_status",
        "error",
        "request",
        "response",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "created_at",
        "item_id",
    ],
}

SPEARMAN_SQL = """
WITH pairs AS (
    SELECT g.value AS glasgow, m.value AS mrc
    FROM ratings g JOIN ratings m USING (item_id, dimension)
    WHERE g.rater = 'toolbox-glasgow' AND m.rater = 'toolbox-mrc' AND dimension = 'familiarity'
),
ranked AS (  -- average ranks for ties, as spearmanr
    SELECT rank() OVER (ORDER BY glasgow) + (count(*) OVER (PARTITION BY glasgow) - 1) / 2 AS rg,
           rank() OVER (ORDER BY mrc) + (count(*) OVER (PARTITION BY mrc) - 1) / 2 AS rm
    FROM pairs
)
SELECT count(*) AS n, corr(rg, rm) AS rho FROM ranked
"""


def _import(engine, path: Path, name: str) -> None:
    with Session(engine) as s, s.begin():
        import_file(s, path, preset_specs("glasgow_mrc", name))


@pytest.fixture
def store(engine, shared_data, tmp_path, monkeypatch):
    """The toolbox familiarity file imported; PostgreSQL snapshots cached under tmp_path."""
    if engine.dialect.name == "postgresql":
        monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    else:
        monkeypatch.delenv("WORKBENCH_CACHE_DIR", raising=False)
    _import(engine, shared_data / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx", "toolbox")
    return engine


def _store_counts(engine) -> dict[str, int]:
    with Session(engine) as s:
        return {
            table: s.scalar(select(func.count()).select_from(model))
            for table, model in [
                ("items", Item),
                ("dimensions", Dimension),
                ("datasets", Dataset),
                ("raters", Rater),
                ("ratings", Rating),
                ("word_list_items", DatasetItem),
                ("item_attributes", ItemAttribute),
                ("jobs", Job),
                ("calls", Call),
            ]  # fmt: skip
        } | {"generation": generation(s)}


def _snapshot_counts(engine) -> dict[str, int]:
    sql = " UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in COLUMNS)
    return {r["t"]: r["n"] for r in run_sql(engine, sql).to_pylist()}


def test_tables_and_columns(store):
    table = run_sql(
        store,
        "SELECT table_name, list(column_name ORDER BY ordinal_position) AS columns FROM information_schema.columns GROUP BY ALL",
    )
    got = {r["table_name"]: r["columns"] for r in table.to_pylist()}
    assert got.pop("ratings_wide") == ["item", "language", "dimension", "toolbox-glasgow", "toolbox-mrc"]
    assert got.pop("rating_pairs") == [
        "item",
        "language",
        "dimension",
        "rater_a",
        "rater_b",
        "kind_a",
        "kind_b",
        "value_a",
        "value_b",
        "item_id",
    ]
    assert got == COLUMNS


PAIRS_SPEARMAN_SQL = """
WITH ranked AS (
    SELECT rater_a, rater_b,
        rank() OVER w_a + (count(*) OVER (PARTITION BY rater_a, rater_b, value_a) - 1) / 2 AS ra,
        rank() OVER w_b + (count(*) OVER (PARTITION BY rater_a, rater_b, value_b) - 1) / 2 AS rb
    FROM rating_pairs
    WINDOW w_a AS (PARTITION BY rater_a, rater_b ORDER BY value_a), w_b AS (PARTITION BY rater_a, rater_b ORDER BY value_b)
)
SELECT rater_a, rater_b, count(*) AS n, corr(ra, rb) AS rho FROM ranked GROUP BY ALL
"""


def test_wide_and_pairs_views_give_the_same_spearman_as_scipy(store):
    from scipy.stats import spearmanr

    wide = run_sql(store, 'SELECT "toolbox-glasgow" AS g, "toolbox-mrc" AS m FROM ratings_wide').to_pydict()
    assert len(wide["g"]) == 2545
    expected = spearmanr(wide["g"], wide["m"])[0]
    (row,) = run_sql(store, PAIRS_SPEARMAN_SQL).to_pylist()
    assert (row["rater_a"], row["rater_b"], row["n"]) == ("toolbox-glasgow", "toolbox-mrc", 2545)
    assert row["rho"] == pytest.approx(expected, abs=1e-12)


def test_counts_and_values_match_store(store):
    counts = _store_counts(store)
    assert counts["ratings"] == 2 * 2545
    assert _snapshot_counts(store) == {t: counts[t] for t in COLUMNS}
    with Session(store) as s:
        expected = dict(
            s.execute(select(Rater.name, func.sum(Rating.value)).join(Rater, Rater.id == Rating.rater_id).group_by(Rater.name)).all()
        )
    got = run_sql(store, "SELECT rater, sum(value) AS total FROM ratings GROUP BY rater").to_pylist()
    assert {r["rater"]: r["total"] for r in got} == pytest.approx(expected, rel=1e-12)
    row = run_sql(store, "SELECT * FROM ratings WHERE item = 'abdomen' AND rater = 'toolbox-mrc'").to_pylist()
    assert row == [
        {
            "item": "abdomen",
            "language": "en",
            "dimension": "familiarity",
            "rater": "toolbox-mrc",
            "rater_kind": "norm",
            "dataset": "toolbox-mrc",
            "replicate": 0,
            "value": 4.26,
            "sd": None,
            "n": None,
            "mass": None,
            "note": None,
            "answer": None,
            "item_id": row[0]["item_id"],
            "rater_id": row[0]["rater_id"],
            "dimension_id": row[0]["dimension_id"],
        }
    ]


def test_spearman_in_sql_matches_scipy(store):
    result = run_sql(store, SPEARMAN_SQL).to_pylist()[0]
    with Session(store) as s:
        pairs = s.execute(
            select(Item.id, Rater.name, Rating.value).join(Item, Item.id == Rating.item_id).join(Rater, Rater.id == Rating.rater_id)
        ).all()
    by_rater: dict[str, dict[int, float]] = {}
    for item_id, rater, value in pairs:
        by_rater.setdefault(rater, {})[item_id] = value
    shared = sorted(set(by_rater["toolbox-glasgow"]) & set(by_rater["toolbox-mrc"]))
    expected = spearmanr([by_rater["toolbox-glasgow"][i] for i in shared], [by_rater["toolbox-mrc"][i] for i in shared])
    assert result["n"] == len(shared) == 2545
    assert result["rho"] == pytest.approx(expected.statistic, abs=1e-12)
    assert result["rho"] == pytest.approx(0.80, abs=0.005)  # the published figure


def test_snapshot_reused_then_rebuilt_after_import(store, shared_data):
    run_sql(store, "SELECT 1")
    first = snapshot_path(store)
    stat = first.stat()
    assert run_sql(store, "SELECT count(*) AS n FROM ratings").to_pylist() == [{"n": 5090}]
    assert snapshot_path(store) == first
    assert (first.stat().st_ino, first.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)

    held = open_snapshot(store)
    _import(store, shared_data / "glasgow_mrc" / "train_1500.xlsx", "train")
    second = snapshot_path(store)
    assert second != first and not second.exists()
    assert run_sql(store, "SELECT count(*) AS n FROM datasets").to_pylist() == [{"n": 4}]
    assert second.exists() and not first.exists()
    # a connection taken before the change still answers, from the snapshot it was opened on
    assert held.sql("SELECT count(*) FROM datasets").fetchall() == [(2,)]
    held.close()
    assert _snapshot_counts(store)["ratings"] == 5090 + 3000
    assert [p.name for p in second.parent.iterdir()] == [second.name]  # no temp files or old generations


def test_snapshot_location(store, db_url, tmp_path):
    path = snapshot_path(store)
    if store.dialect.name == "sqlite":
        with Session(store) as s:
            ident = store_id(s)
        assert len(ident) == 32
        assert path == tmp_path / ".workbench-cache" / f"store.db.{ident}-g1.v{SNAPSHOT_FORMAT}.duckdb"
    else:
        assert path.parent == tmp_path / "cache"
        assert path.name.startswith("postgresql-" + store.url.database + "-")
        # the password is not part of the key (the test server trusts any password)
        with_password = connect(db_url.replace("postgres@", "postgres:secret@"))
        try:
            assert snapshot_path(with_password) == path
        finally:
            with_password.dispose()


def test_adbc_and_sqlalchemy_transfers_agree(store):
    queries = _source_queries(store)
    adbc, fallback = _fetch_adbc(store, queries), _fetch_sqlalchemy(store, queries)
    assert {n: t.to_pylist() for n, t in adbc.items()} == {n: t.to_pylist() for n, t in fallback.items()}


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE t (x INTEGER)",
        "CREATE TEMP TABLE t AS SELECT 1",
        "INSERT INTO items VALUES (99999, 'zzz', 'en')",
        "UPDATE ratings SET value = 0",
        "DELETE FROM ratings",
        "DROP TABLE ratings",
        "SELECT 1; DROP TABLE ratings",
        "COPY ratings TO '{tmp}/x.csv'",
        "EXPORT DATABASE '{tmp}/dump'",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "SELECT * FROM read_csv('{tmp}/x.csv')",
        "SELECT * FROM glob('/*')",
        "INSTALL httpfs",
        "LOAD sqlite",
        "SET enable_external_access = true",
        "EXPLAIN ANALYZE COPY ratings TO '{tmp}/x.csv'",
        "EXPLAIN ANALYSE SELECT count(*) FROM ratings",
        "explain /* plan */ analyze select 1",
        "EXPLAIN (ANALYZE) SELECT 1",
        "EXPLAIN COPY ratings TO '{tmp}/x.csv'",
        "SELECT 1; EXPLAIN ANALYZE SELECT 2",
    ],
)
def test_writes_and_file_access_refused(store, tmp_path, statement):
    run_sql(store, "SELECT 1")
    path = snapshot_path(store)
    before, stat = _store_counts(store), path.stat()
    (tmp_path / "x.csv").unlink(missing_ok=True)
    with pytest.raises(WorkbenchError, match=r"^`workbench sql` is read-only: "):
        run_sql(store, statement.format(tmp=tmp_path))
    assert _store_counts(store) == before
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert _snapshot_counts(store) == {t: before[t] for t in COLUMNS}
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "other.duckdb").exists()
    assert not (tmp_path / "dump").exists()


def test_open_snapshot_is_locked_down(store):
    con = open_snapshot(store)
    try:
        assert con.sql("SELECT current_setting('enable_external_access') AS v").fetchall() == [(False,)]
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("CREATE TABLE t (x INTEGER)")
    finally:
        con.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELEC * FROM ratings", r'^SQL error: Parser Error: syntax error at or near "SELEC"$'),
        ("SELECT nope FROM ratings", r'^SQL error: Binder Error: Referenced column "nope" not found'),
        ("SELECT * FROM nowhere", r"^SQL error: Catalog Error: Table with name nowhere does not exist!"),
        ("SELECT 'abc'::INTEGER", r"^SQL error: Conversion Error: "),
        ("  ; ", r"^The query is empty"),
    ],
)
def test_sql_errors_are_one_line(store, query, message):
    with pytest.raises(WorkbenchError, match=message) as info:
        run_sql(store, query)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT " + "(" * 1200 + "1" + ")" * 1200,  # too deep for the parser
        "SELECT " + " + ".join(["1"] * 3000),
    ],
    ids=["parens", "sum"],
)
def test_too_deep_a_query_is_told_how_to_write_it_not_to_set_a_limit(store, query):
    """DuckDB's own hint is `SET max_expression_depth TO x`, which the locked snapshot refuses."""
    with pytest.raises(WorkbenchError) as info:
        run_sql(store, query)
    message = str(info.value)
    assert message.startswith("SQL error: the query nests expressions more than 1000 deep, DuckDB's limit"), message
    assert "SET" not in message and "write it flatter" in message and "\n" not in message
    with pytest.raises(WorkbenchError, match="SET statements are refused"):
        run_sql(store, "SET max_expression_depth TO 5000")  # the hint DuckDB gave would not have worked


TINY = "SELECT item, rater, replicate, value, sd FROM ratings WHERE item IN ('abdication', 'abdomen') ORDER BY item, rater"


def test_format_table(store):
    assert format_result(run_sql(store, TINY), "table") == (
        "item        rater            replicate  value    sd\n"
        "----------  ---------------  ---------  -----  ----\n"
        "abdication  toolbox-glasgow          0  3.097  NULL\n"
        "abdication  toolbox-mrc              0   2.84  NULL\n"
        "abdomen     toolbox-glasgow          0  4.636  NULL\n"
        "abdomen     toolbox-mrc              0   4.26  NULL\n"
    )


def test_format_csv(store):
    assert format_result(run_sql(store, TINY), "csv") == (
        "item,rater,replicate,value,sd\r\n"
        "abdication,toolbox-glasgow,0,3.097,\r\n"
        "abdication,toolbox-mrc,0,2.84,\r\n"
        "abdomen,toolbox-glasgow,0,4.636,\r\n"
        "abdomen,toolbox-mrc,0,4.26,\r\n"
    )
    quoted = run_sql(store, "SELECT 'a, \"b\"' AS s, NULL::DOUBLE AS v, 'infinity'::DOUBLE AS big, 0.1::DOUBLE + 0.2 AS x")
    assert format_result(quoted, "csv") == 's,v,big,x\r\n"a, ""b""",,Infinity,0.30000000000000004\r\n'


def test_format_json(store):
    assert format_result(run_sql(store, TINY), "json") == (
        "[\n"
        '{"item": "abdication", "rater": "toolbox-glasgow", "replicate": 0, "value": 3.097, "sd": null},\n'
        '{"item": "abdication", "rater": "toolbox-mrc", "replicate": 0, "value": 2.84, "sd": null},\n'
        '{"item": "abdomen", "rater": "toolbox-glasgow", "replicate": 0, "value": 4.636, "sd": null},\n'
        '{"item": "abdomen", "rater": "toolbox-mrc", "replicate": 0, "value": 4.26, "sd": null}\n'
        "]\n"
    )
    assert format_result(run_sql(store, "SELECT * FROM ratings LIMIT 0"), "json") == "[]\n"
    dated = run_sql(store, "SELECT DATE '2024-02-29' AS d, 'café' AS w, 'infinity'::DOUBLE AS big")
    assert format_result(dated, "json") == '[\n{"d": "2024-02-29", "w": "café", "big": null}\n]\n'


def test_unknown_format(store):
    with pytest.raises(WorkbenchError, match="choose one of table, csv, json"):
        format_result(run_sql(store, "SELECT 1"), "xml")


def test_plain_explain_of_a_select_runs(store):
    plan = run_sql(store, "EXPLAIN SELECT rater, count(*) FROM ratings GROUP BY rater").to_pylist()
    assert plan and "explain_value" in plan[0]
    assert run_sql(store, "-- the plan\nEXPLAIN FROM ratings WHERE value > 3").num_rows >= 1


def test_jobs_and_calls_views(store):
    """The jobs and calls a rating run writes, by name; a request body never shows header fields."""
    with Session(store) as s, s.begin():
        rater = Rater(name="gpt", kind="llm")
        s.add(rater)
        s.flush()
        job = Job(kind="rate", status="done", rater_id=rater.id, config={"model": "m"}, counts={"rated": 1}, cost=0.5)
        s.add(job)
        s.flush()
        item = s.scalar(select(Item).order_by(Item.text).limit(1))
        body = {"model": "m", "messages": [{"role": "user", "content": item.text}], "headers": {"Authorization": "Bearer x"}}
        s.add(Call(job_id=job.id, item_id=item.id, attempt=1, status="ok", http_status=200, request=body,
                   response='{"choices": []}', prompt_tokens=12, completion_tokens=1, latency_ms=40.5))  # fmt: skip
        s.add(Call(job_id=job.id, item_id=None, attempt=2, status="error", http_status=500, error="server error",
                   request={"model": "m"}, response="oops"))  # fmt: skip
        first = item.text
        bump_generation(s)
    (j,) = run_sql(store, "SELECT * FROM jobs WHERE kind = 'rate'").to_pylist()
    assert (j["rater"], j["status"], j["cost"], j["dataset"]) == ("gpt", "done", 0.5, None)
    assert json.loads(j["config"]) == {"model": "m"} and json.loads(j["counts"]) == {"rated": 1}
    calls = run_sql(store, "SELECT * FROM calls ORDER BY call_id").to_pylist()
    assert [(c["rater"], c["item"], c["attempt"], c["status"], c["http_status"]) for c in calls] == [
        ("gpt", first, 1, "ok", 200),
        ("gpt", None, 2, "error", 500),
    ]
    assert json.loads(calls[0]["request"]) == {"model": "m", "messages": [{"role": "user", "content": first}]}
    assert "Bearer" not in str(calls) and "Authorization" not in str(calls)
    assert (calls[0]["prompt_tokens"], calls[0]["latency_ms"], calls[1]["error"]) == (12, 40.5, "server error")
    assert calls[0]["created_at"] is not None
