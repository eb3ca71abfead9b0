"""Read-only SQL over the store: DuckDB on a cached snapshot.

`workbench sql` does not query SQLite or PostgreSQL directly. It copies the
store's tables, through Arrow (ADBC drivers; SQLAlchemy if ADBC fails), into
a DuckDB file, the snapshot, and runs the query there, so aggregates over
millions of ratings run at columnar speed. The snapshot is keyed by the
store's identity (a random id created with the store, `store_meta.store_id`)
and its change counter (`store_meta.generation`, bumped by every write): it
is rebuilt on the first query after a change and reused until the next one;
a store deleted and created again at the same path or URL never gets the
old store's snapshot.

Where the snapshot lives: for a SQLite store ``/x/y/store.db`` in
``/x/y/.workbench-cache/store.db.<id>-g<generation>.v<format>.duckdb``; for
PostgreSQL in ``$WORKBENCH_CACHE_DIR`` or ``~/.cache/workbench/``, named
after the database and a hash of its URL (password left out). When
``WORKBENCH_CACHE_DIR`` is set it is used for SQLite stores too. Older
snapshots of the same store are deleted when a new one is built.

Queries are read-only: only SELECT (with FROM-first, SHOW, DESCRIBE,
SUMMARIZE), plain EXPLAIN of a SELECT (not EXPLAIN ANALYZE, which runs the
statement it explains), PRAGMA and CALL statements run, on a connection opened
read-only with external access disabled and its configuration locked, so a
query can neither change the store or the snapshot nor read or write files.

Tables in the snapshot
----------------------

``items`` -- one row per item (word)
    item_id (INTEGER), item (VARCHAR: the word), language (VARCHAR: e.g. "en")

``dimensions`` -- what is rated
    dimension_id (INTEGER), dimension (VARCHAR: e.g. "familiarity"),
    scale_min (DOUBLE), scale_max (DOUBLE): the scale ratings are stored on

``datasets`` -- imported norm files
    dataset_id (INTEGER), dataset (VARCHAR: its name), preset (VARCHAR: the
    importer preset, or NULL), language (VARCHAR), citation (VARCHAR),
    licence (VARCHAR), origin_file (VARCHAR: the file it was imported from),
    checksum (VARCHAR: SHA-256 of that file), imported_at (TIMESTAMP, UTC)

``raters`` -- who rated: a norm dataset, a human panel, an LLM or a model
    rater_id (INTEGER), rater (VARCHAR: its name), kind (VARCHAR: norm, human,
    llm or model), dataset (VARCHAR: the dataset it belongs to, or NULL)

``ratings`` -- every rating, long form, already joined to the tables above
    item (VARCHAR), language (VARCHAR), dimension (VARCHAR), rater (VARCHAR),
    rater_kind (VARCHAR), dataset (VARCHAR or NULL), replicate (INTEGER: 0,
    or the repeat number for raters asked more than once), value (DOUBLE: the
    mean rating), sd (DOUBLE or NULL), n (INTEGER or NULL: raters behind the
    mean), mass (DOUBLE or NULL: an LLM's probability on scale tokens), note
    (VARCHAR or NULL: why a value is missing, or a warning), answer (VARCHAR or
    NULL: the model's raw answer), item_id, rater_id, dimension_id (INTEGER:
    keys into the tables above)

``ratings_wide`` -- one row per (item, language, dimension), one column per
    rater holding its value (NULL: not rated); quote rater names with
    hyphens: "toolbox-mrc"

``rating_pairs`` -- (a view) every two raters' values on an item both rated:
    item, language, dimension, rater_a, rater_b (rater_a < rater_b), kind_a,
    kind_b, value_a, value_b, item_id

``word_list_items`` -- the words of each word list (items to rate that came with no ratings)
    dataset (VARCHAR: the word list), item (VARCHAR), language (VARCHAR), position (INTEGER: its row in
    the file, from 0), dataset_id, item_id (INTEGER)

``item_attributes`` -- what word lists say about their words: one row per word and column of the file
    dataset (VARCHAR: the word list), item (VARCHAR), language (VARCHAR), key (VARCHAR: the column, e.g.
    "pos"), value (VARCHAR: the cell as written, e.g. "noun"), dataset_id, item_id (INTEGER)

``jobs`` -- one row per rating run or import
    job_id (INTEGER), kind (VARCHAR: e.g. "rate" or "import"), status
    (VARCHAR: running, done, failed, ...), rater (VARCHAR or NULL), dataset
    (VARCHAR or NULL), config (VARCHAR: the run's configuration as JSON),
    counts (VARCHAR: JSON of the run's counts, e.g. rated/failed), cost
    (DOUBLE or NULL: estimated USD), error (VARCHAR or NULL), external_id
    (VARCHAR or NULL: e.g. an OpenAI batch id), started_at, finished_at
    (TIMESTAMP, UTC), rater_id, dataset_id (INTEGER)

``calls`` -- one row per request to a model server (every attempt)
    call_id (INTEGER), job_id (INTEGER), rater (VARCHAR: the job's rater),
    item (VARCHAR or NULL), attempt (INTEGER: 1 for the first try), status
    (VARCHAR: ok or error), http_status (INTEGER or NULL), error (VARCHAR or
    NULL), request (VARCHAR: the JSON body sent, never headers), response
    (VARCHAR: the raw body received), prompt_tokens, completion_tokens
    (INTEGER or NULL), latency_ms (DOUBLE or NULL), created_at (TIMESTAMP,
    UTC), item_id (INTEGER). Keys are redacted before a response is stored.

Example::

    SELECT dimension, rater, count(*), avg(value) FROM ratings GROUP BY ALL
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import urllib.parse
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlalchemy import URL, Engine
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.files import CACHE_ENV, cache_root
from workbench.output import render
from workbench.store.meta import store_version

# bump when the snapshot's tables change, so old cache files are not reused
SNAPSHOT_FORMAT = 3
ALLOWED_STATEMENTS = {"SELECT", "EXPLAIN", "PRAGMA", "CALL"}
READ_ONLY_CONFIG = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "lock_configuration": True,
}

# what is copied from the store: source query per table
SOURCE = {
    "items": "SELECT id, text, language FROM items",
    "dimensions": "SELECT id, name, scale_min, scale_max FROM dimensions",
    "datasets": "SELECT id, name, preset, language, citation, licence, origin_file, checksum, {time:imported_at} FROM datasets",
    "raters": "SELECT id, name, kind, dataset_id FROM raters",
    "ratings": "SELECT item_id, dimension_id, rater_id, replicate, value, sd, n, mass, note, raw_answer FROM ratings",
    "dataset_items": "SELECT dataset_id, item_id, position FROM dataset_items",
    "item_attributes": "SELECT dataset_id, item_id, key, value FROM item_attributes",
    "jobs": "SELECT id, kind, status, rater_id, dataset_id, {json:config}, {json:counts}, cost, error, external_id, "
    "{time:started_at}, {time:finished_at} FROM jobs",
    "calls": "SELECT id, job_id, item_id, attempt, status, http_status, error, {json:request}, response, "
    "prompt_tokens, completion_tokens, latency_ms, {time:created_at} FROM calls",
}

# how the snapshot's tables are made from the copied ones (src_<table>)
BUILD = [
    """CREATE TABLE items AS SELECT id::INTEGER AS item_id, text::VARCHAR AS item, language::VARCHAR AS language
       FROM src_items ORDER BY item_id""",
    """CREATE TABLE dimensions AS SELECT id::INTEGER AS dimension_id, name::VARCHAR AS dimension,
       scale_min::DOUBLE AS scale_min, scale_max::DOUBLE AS scale_max FROM src_dimensions ORDER BY dimension_id""",
    """CREATE TABLE datasets AS SELECT id::INTEGER AS dataset_id, name::VARCHAR AS dataset, preset::VARCHAR AS preset,
       language::VARCHAR AS language, citation::VARCHAR AS citation, licence::VARCHAR AS licence,
       origin_file::VARCHAR AS origin_file, checksum::VARCHAR AS checksum, imported_at::TIMESTAMP AS imported_at
       FROM src_datasets ORDER BY dataset_id""",
    """CREATE TABLE raters AS SELECT r.id::INTEGER AS rater_id, r.name::VARCHAR AS rater, r.kind::VARCHAR AS kind,
       d.dataset FROM src_raters r LEFT JOIN datasets d ON d.dataset_id = r.dataset_id ORDER BY rater_id""",
    """CREATE TABLE ratings AS SELECT i.item, i.language, d.dimension, r.rater, r.kind AS rater_kind, r.dataset,
       x.replicate::INTEGER AS replicate, x.value::DOUBLE AS value, x.sd::DOUBLE AS sd, x.n::INTEGER AS n,
       x.mass::DOUBLE AS mass, x.note::VARCHAR AS note, x.raw_answer::VARCHAR AS answer,
       i.item_id, r.rater_id, d.dimension_id
       FROM src_ratings x
       JOIN items i ON i.item_id = x.item_id
       JOIN dimensions d ON d.dimension_id = x.dimension_id
       JOIN raters r ON r.rater_id = x.rater_id""",
    """CREATE TABLE word_list_items AS SELECT d.dataset, i.item, i.language, x.position::INTEGER AS position,
       x.dataset_id::INTEGER AS dataset_id, x.item_id::INTEGER AS item_id
       FROM src_dataset_items x JOIN datasets d ON d.dataset_id = x.dataset_id JOIN items i ON i.item_id = x.item_id
       ORDER BY d.dataset, position""",
    """CREATE TABLE item_attributes AS SELECT d.dataset, i.item, i.language, x.key::VARCHAR AS key,
       x.value::VARCHAR AS value, x.dataset_id::INTEGER AS dataset_id, x.item_id::INTEGER AS item_id
       FROM src_item_attributes x JOIN datasets d ON d.dataset_id = x.dataset_id JOIN items i ON i.item_id = x.item_id
       ORDER BY d.dataset, i.item, key""",
    """CREATE TABLE jobs AS SELECT j.id::INTEGER AS job_id, j.kind::VARCHAR AS kind, j.status::VARCHAR AS status,
       r.rater, d.dataset, j.config::VARCHAR AS config, j.counts::VARCHAR AS counts, j.cost::DOUBLE AS cost,
       j.error::VARCHAR AS error, j.external_id::VARCHAR AS external_id, j.started_at::TIMESTAMP AS started_at,
       j.finished_at::TIMESTAMP AS finished_at, j.rater_id::INTEGER AS rater_id, j.dataset_id::INTEGER AS dataset_id
       FROM src_jobs j LEFT JOIN raters r ON r.rater_id = j.rater_id LEFT JOIN datasets d ON d.dataset_id = j.dataset_id
       ORDER BY job_id""",
    """CREATE TABLE calls AS SELECT c.id::INTEGER AS call_id, c.job_id::INTEGER AS job_id, j.rater, i.item,
       c.attempt::INTEGER AS attempt, c.status::VARCHAR AS status, c.http_status::INTEGER AS http_status,
       c.error::VARCHAR AS error, c.request::VARCHAR AS request, c.response::VARCHAR AS response,
       c.prompt_tokens::INTEGER AS prompt_tokens, c.completion_tokens::INTEGER AS completion_tokens,
       c.latency_ms::DOUBLE AS latency_ms, c.created_at::TIMESTAMP AS created_at, c.item_id::INTEGER AS item_id
       FROM src_calls c LEFT JOIN jobs j ON j.job_id = c.job_id LEFT JOIN items i ON i.item_id = c.item_id
       ORDER BY call_id""",
]

# a request body never carries headers; should one ever hold such a field, the snapshot leaves it out
_HEADER_FIELDS = {"headers", "extra_headers", "authorization", "api_key", "api-key"}


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _without_headers(table: pa.Table) -> pa.Table:
    """calls.request with any header-like field dropped from the JSON body."""
    column = table.column("request")
    values = column.to_pylist()
    changed = False
    for i, value in enumerate(values):
        if value is None or not any(f in value.lower() for f in _HEADER_FIELDS):
            continue
        try:
            body = json.loads(value)
        except ValueError:
            continue
        if isinstance(body, dict):
            kept = {k: v for k, v in body.items() if str(k).lower() not in _HEADER_FIELDS}
            if len(kept) != len(body):
                values[i], changed = json.dumps(kept, ensure_ascii=False), True
    if not changed:
        return table
    index = table.column_names.index("request")
    return table.set_column(index, "request", pa.array(values, type=pa.string()))


# agreement work: every two raters' values on the items both rated (a view: computed when queried)
PAIRS = """CREATE VIEW rating_pairs AS
   SELECT a.item, a.language, a.dimension, a.rater AS rater_a, b.rater AS rater_b,
          a.rater_kind AS kind_a, b.rater_kind AS kind_b, a.value AS value_a, b.value AS value_b, a.item_id
   FROM ratings a JOIN ratings b
     ON a.item_id = b.item_id AND a.dimension_id = b.dimension_id AND a.rater < b.rater
   WHERE a.replicate = 0 AND b.replicate = 0 AND a.value IS NOT NULL AND b.value IS NOT NULL"""


def _build_wide(con) -> None:
    """ratings_wide: one row per item and dimension, one column per rater (its value)."""
    con.execute(PAIRS)
    raters = [r for (r,) in con.execute("SELECT DISTINCT rater FROM ratings ORDER BY rater").fetchall()]
    if not raters:
        con.execute("CREATE TABLE ratings_wide AS SELECT item, language, dimension FROM ratings")
        return
    con.execute(
        "CREATE TABLE ratings_wide AS SELECT * FROM (PIVOT (SELECT item, language, dimension, rater, value "
        "FROM ratings WHERE replicate = 0) ON rater USING first(value) GROUP BY item, language, dimension) "
        "ORDER BY dimension, item"
    )


# --- where the snapshot lives -------------------------------------------------


def _cache_base(engine: Engine) -> Path:
    """The snapshot's path without the ``.<id>-g<generation>...`` suffix."""
    url = engine.url
    env = os.environ.get(CACHE_ENV)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise WorkbenchError("`workbench sql` needs a store in a file or on a server, not an in-memory SQLite database.")
        db = Path(url.database).resolve()
        if not env:
            return db.parent / ".workbench-cache" / db.name
    folder = cache_root()
    key = URL.create(url.get_backend_name(), url.username, None, url.host, url.port, url.database, url.query)
    digest = hashlib.sha256(key.render_as_string().encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(url.database or "db").name)
    return folder / f"{url.get_backend_name()}-{name}-{digest}"


def _path_for(base: Path, version: str) -> Path:
    return base.with_name(f"{base.name}.{version}.v{SNAPSHOT_FORMAT}.duckdb")


def _store_version(engine: Engine) -> str:
    with Session(engine) as session:
        return store_version(session)


def snapshot_path(engine: Engine) -> Path:
    """Where the snapshot of the store's current contents (identity + generation) is (or will be) kept."""
    return _path_for(_cache_base(engine), _store_version(engine))


# --- copying the store --------------------------------------------------------


def _source_queries(engine: Engine) -> dict[str, str]:
    pg = engine.dialect.name == "postgresql"

    def column(match: re.Match) -> str:
        kind, name = match.group(1), match.group(2)
        if not pg:
            return name
        return f"{name}::text AS {name}" if kind == "json" else f"{name} AT TIME ZONE 'UTC' AS {name}"

    return {name: re.sub(r"\{(json|time):(\w+)\}", column, sql) for name, sql in SOURCE.items()}


def _fetch_adbc(engine: Engine, queries: dict[str, str]) -> dict[str, pa.Table]:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        import adbc_driver_sqlite.dbapi as adbc

        uri = "file:" + urllib.parse.quote(str(Path(url.database).resolve())) + "?mode=ro"
        # the driver infers each column's type from its first batch: one batch for the whole
        # table, so a column that starts with NULLs (sd, n) still comes out as the right type
        options = {"adbc.sqlite.query.batch_rows": str(1 << 30)}
    else:
        import adbc_driver_postgresql.dbapi as adbc

        uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
        options = {}
    out = {}
    with adbc.connect(uri) as conn:
        for name, sql in queries.items():
            with conn.cursor() as cur:
                if options:
                    cur.adbc_statement.set_options(**options)
                cur.execute(sql)
                out[name] = cur.fetch_arrow_table()
    return out


def _fetch_sqlalchemy(engine: Engine, queries: dict[str, str]) -> dict[str, pa.Table]:
    out = {}
    with engine.connect() as conn:
        for name, sql in queries.items():
            result = conn.exec_driver_sql(sql)
            columns = list(result.keys())
            rows = result.fetchall()
            out[name] = pa.table({c: pa.array([r[i] for r in rows]) for i, c in enumerate(columns)})
    return out


def _fetch_tables(engine: Engine, queries: dict[str, str]) -> dict[str, pa.Table]:
    try:
        return _fetch_adbc(engine, queries)
    except Exception:  # driver missing, or it refused the URL or a type: go through SQLAlchemy
        return _fetch_sqlalchemy(engine, queries)


def _fetch(engine: Engine) -> tuple[str, dict[str, pa.Table]]:
    """The store's tables and their version: no change was committed while they were read."""
    queries = _source_queries(engine)
    for _attempt in range(5):
        before = _store_version(engine)
        tables = _fetch_tables(engine, queries)
        if _store_version(engine) == before:
            return before, tables
    raise WorkbenchError("The store kept changing while its snapshot was taken; run the query again.")


def _build(engine: Engine) -> Path:
    version, tables = _fetch(engine)
    base = _cache_base(engine)
    path = _path_for(base, version)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(
            f"Cannot create the snapshot folder {path.parent}: {exc.strerror}. Set WORKBENCH_CACHE_DIR to a writable folder."
        ) from None
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        con = duckdb.connect(str(tmp))
        try:
            for name, table in tables.items():
                if name == "calls" and table.num_rows and _is_text(table.schema.field("request").type):
                    table = _without_headers(table)
                con.register(f"src_{name}", table)
            for sql in BUILD:
                con.execute(sql)
            _build_wide(con)
            counts = _row_counts(con)
            # written out now, so a failure (disk full) is raised here: the checkpoint that close()
            # would do swallows it and leaves a file without its tables
            con.execute("CHECKPOINT")
        finally:
            con.close()
        if _row_counts_of(tmp) != counts:
            raise WorkbenchError(
                f"The SQL snapshot written in {path.parent} came out incomplete (is the disk full?); "
                "free some space there, or set WORKBENCH_CACHE_DIR to a folder on another disk, and run the query again."
            )
        tmp.replace(path)
    except (duckdb.Error, OSError) as exc:
        known = _write_error(exc, path.parent)
        if known is None:
            raise
        raise known from None
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
    _remove_older(base, path)
    return path


SNAPSHOT_TABLES = ("items", "dimensions", "datasets", "raters", "ratings", "ratings_wide", "jobs", "calls", "rating_pairs")
_WRITE_FAILURES = {
    "no space left on device": "the disk is full",
    "disk quota exceeded": "the disk quota is used up",
    "read-only file system": "the file system is read-only",
    "permission denied": "permission denied",
    "file too large": "the file is too large for that file system",
}


def _has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    present = {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    return set(SNAPSHOT_TABLES) <= present


def _row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int] | None:
    """Rows per snapshot table (None: a table is missing: the file is not a whole snapshot)."""
    if not _has_tables(con):
        return None
    return {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in SNAPSHOT_TABLES if name != "rating_pairs"}


def _row_counts_of(path: Path) -> dict[str, int] | None:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        return _row_counts(con)
    finally:
        con.close()


def _write_error(exc: BaseException, folder: Path) -> WorkbenchError | None:
    """One line for a snapshot that could not be written (disk full, read-only folder); None: another error."""
    text = str(getattr(exc, "strerror", None) or exc).lower()
    if isinstance(exc, OSError) and exc.errno is not None:
        text = os.strerror(exc.errno).lower()
    for needle, why in _WRITE_FAILURES.items():
        if needle in text:
            return WorkbenchError(
                f"Cannot write the SQL snapshot in {folder}: {why}. Free some space there, "
                "or set WORKBENCH_CACHE_DIR to a writable folder on another disk, and run the query again."
            )
    return None


def _remove_older(base: Path, keep: Path) -> None:
    pattern = re.compile(re.escape(base.name) + r"\.(\w+-)?g\d+\.v\d+\.duckdb")
    for old in base.parent.iterdir():
        if old != keep and pattern.fullmatch(old.name):
            try:
                old.unlink(missing_ok=True)
            except OSError:  # still open elsewhere (Windows): the next rebuild tries again
                pass


# --- querying -------------------------------------------------------------------


# one open snapshot per store and process: starting a DuckDB database costs ~10 ms,
# a cursor on an open one well under 1 ms
_OPEN: dict[Path, tuple[Path, duckdb.DuckDBPyConnection]] = {}
_OPEN_LOCK = threading.Lock()


def _connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True, config=READ_ONLY_CONFIG)


def open_snapshot(engine: Engine) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection on the store's current snapshot, built first if stale.

    External access is disabled and the configuration locked: the connection
    cannot write, attach databases, load extensions or touch files. Close it
    when done.
    """
    base, path = _cache_base(engine), snapshot_path(engine)
    with _OPEN_LOCK:
        held = _OPEN.get(base)
        if held is None or held[0] != path:
            # an older snapshot is dropped, not closed: connections handed out on it still work
            _OPEN.pop(base, None)
            if not path.exists():
                path = _build(engine)
            try:
                con = _connect_read_only(path)
            except duckdb.IOException:  # deleted by a concurrent rebuild since: take the newest
                path = _build(engine)
                con = _connect_read_only(path)
            if not _has_tables(con):  # cut short (a full disk, by an older workbench): never used, built again
                con.close()
                path.unlink(missing_ok=True)
                path = _build(engine)
                con = _connect_read_only(path)
            _OPEN[base] = (path, con)
        return _OPEN[base][1].cursor()


def _read_only_error(refused: str) -> WorkbenchError:
    return WorkbenchError(
        f"`workbench sql` is read-only: {refused}. It runs SELECT queries on a snapshot of the "
        "store; change the store with workbench's import and rating commands."
    )


_DEPTH = re.compile(r"max(imum)? expression depth limit of (\d+) exceeded", re.IGNORECASE)


def _one_line(exc: duckdb.Error) -> str:
    lines = []
    for line in str(exc).splitlines():
        if line.startswith("LINE "):
            break
        if line.strip():
            lines.append(line.strip())
    message = " ".join(lines)
    depth = _DEPTH.search(message)
    if depth:  # DuckDB's own hint is a SET, which the locked configuration refuses
        return (
            f"the query nests expressions more than {depth.group(2)} deep, DuckDB's limit (its settings cannot be "
            "changed here); write it flatter, e.g. `sum(x)` or `x IN (...)` instead of a long chain of + or OR, or in steps with WITH"
        )
    return message


def _check_explain(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Only a plain EXPLAIN of a SELECT: EXPLAIN ANALYZE runs what it explains (a COPY ... TO, say)."""
    every = duckdb.tokenize(query)
    ends = [pos for pos, _ in every[1:]] + [len(query)]
    tokens, words = [], []
    for (pos, kind), end in zip(every, ends):
        if kind != duckdb.token_type.comment:
            tokens.append((pos, kind))
            words.append(query[pos:end].strip())
    if len(words) < 2 or words[0].upper() != "EXPLAIN":
        raise _read_only_error("only a plain EXPLAIN of a SELECT runs")
    if words[1].upper() in ("ANALYZE", "ANALYSE") or words[1].startswith("("):
        raise _read_only_error("EXPLAIN ANALYZE runs the statement it explains, and EXPLAIN takes no options; use plain EXPLAIN SELECT ...")
    try:
        inner = con.extract_statements(query[tokens[1][0] :])
    except duckdb.Error as exc:
        raise WorkbenchError(f"SQL error: {_one_line(exc)}") from None
    if len(inner) != 1 or inner[0].type.name != "SELECT":
        kind = inner[0].type.name if inner else "an empty statement"
        raise _read_only_error(f"EXPLAIN of {kind} is refused; only a plain EXPLAIN of a SELECT runs")


def run_sql(engine: Engine, query: str) -> pa.Table:
    """Run a read-only query on the store's snapshot; the last statement's rows as an Arrow table."""
    con = open_snapshot(engine)
    try:
        try:
            statements = con.extract_statements(query)
        except duckdb.Error as exc:
            raise WorkbenchError(f"SQL error: {_one_line(exc)}") from None
        if not statements:
            raise WorkbenchError("The query is empty: give a SELECT statement, e.g. SELECT * FROM ratings LIMIT 10.")
        for statement in statements:
            if statement.type.name not in ALLOWED_STATEMENTS:
                raise _read_only_error(f"{statement.type.name} statements are refused")
            if statement.type.name == "EXPLAIN":
                _check_explain(con, statement.query)
        try:
            relation = con.sql(query)
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.PermissionException:
            raise _read_only_error("queries cannot read or write files, attach databases or load extensions") from None
        except duckdb.Error as exc:
            message = _one_line(exc)
            if "read-only mode" in message or "configuration has been locked" in message:
                raise _read_only_error("queries cannot change the snapshot or its settings") from None
            raise WorkbenchError(f"SQL error: {message}") from None
    finally:
        con.close()


# --- output -------------------------------------------------------------------


def result_rows(table: pa.Table) -> tuple[list[str], list[tuple], list[bool]]:
    """A query's column names, rows and which columns are numbers: what `workbench.cli.display.show` prints."""
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in table.schema.types]
    columns = [col.to_pylist() for col in table.columns]
    rows = list(zip(*columns)) if columns else []
    return table.column_names, rows, numeric


def format_result(table: pa.Table, fmt: str) -> str:
    """The rows as text ending in a newline, as every command prints data (workbench.output.render)."""
    names, rows, numeric = result_rows(table)
    return render(names, rows, fmt, numeric=numeric)
