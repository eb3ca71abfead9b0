"""The CLI through Typer's CliRunner, with exact output checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench.cli.main import app
from workbench.store.engine import redact_url
from workbench.study.load import SCHEMA_HINT

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def runner():
    return CliRunner()


def run(runner, *args, code=0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.output, result.stderr if code == 0 else "", result.exception)
    return result


def write_study(tmp_path: Path, shared: Path, extra: str = "") -> Path:
    study = tmp_path / "study.yaml"
    study.write_text(
        f"""study: fam
dimensions:
  familiarity: {{scale: [1, 7], labels: {{1: unfamiliar, 7: familiar}}}}
datasets:
  toolbox:
    file: {shared / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx"}
    preset: glasgow_mrc
{extra}""",
        encoding="utf-8",
    )
    return study


def test_init_scaffolds_a_study(runner, tmp_path):
    target = tmp_path / "norms"
    result = run(runner, "init", target)
    assert (target / "study.yaml").exists()
    assert (target / "prompts" / "familiarity.txt").exists()
    assert (target / "data").is_dir()
    assert "study: norms" in (target / "study.yaml").read_text()
    assert result.output.splitlines()[0] == (
        f"Created {target / 'study.yaml'} (its schema: {target / 'study.schema.json'}), {target / 'prompts'}/ and {target / 'data'}/."
    )
    # the schema the study file points at is beside it, and is the one the code generates
    from workbench.study.schema import render as render_schema

    assert "$schema=study.schema.json" in (target / "study.yaml").read_text().splitlines()[0]
    assert (target / "study.schema.json").read_text(encoding="utf-8") == render_schema()
    # the scaffold is a valid study
    assert run(runner, "validate", "--study", target / "study.yaml").output == (
        f"{target / 'study.yaml'}: valid (1 dimension, 0 datasets).\n"
    )
    again = run(runner, "init", target, code=1)
    assert again.stderr == f"Error: {target / 'study.yaml'} already exists: choose another folder or edit it.\n"


def test_plan_apply_apply_status(runner, tmp_path, shared_data, db_url):
    study = write_study(tmp_path, shared_data)
    url = redact_url(db_url)
    xlsx = (shared_data / "glasgow_mrc" / "glasgow_mrc_familiarity.xlsx").resolve()
    plan = run(runner, "plan", "--study", study, "--db", db_url)
    assert plan.output == (
        "  create    dimension familiarity  (scale 1-7)\n"
        f"  import    dataset toolbox-glasgow  ({xlsx} (outside the study folder), preset glasgow_mrc)\n"
        f"  import    dataset toolbox-mrc  ({xlsx} (outside the study folder), preset glasgow_mrc)\n"
        "3 to do. Run `workbench apply` to do it.\n"
    )
    # plan did not touch the store
    assert run(runner, "plan", "--study", study, "--db", db_url).output == plan.output
    first = run(runner, "apply", "--study", study, "--db", db_url)
    assert first.output == (
        "  dimension familiarity: created\n"
        "  toolbox-glasgow: imported 2545 items, 2545 ratings (familiarity)\n"
        "  toolbox-mrc: imported 2545 items, 2545 ratings (familiarity)\n"
        "Applied 3 changes.\n"
    )
    second = run(runner, "apply", "--study", study, "--db", db_url)
    assert second.output == "Nothing to do: the store matches the study.\n"
    status = run(runner, "status", "--study", study, "--db", db_url)
    assert status.output == (
        f"{url}: 2545 items, 5090 ratings\n"
        "\n"
        "Datasets:\n"
        "dataset          kind   preset       language  items  ratings  dimensions\n"
        "---------------  -----  -----------  --------  -----  -------  -----------\n"
        "toolbox-glasgow  norms  glasgow_mrc  en         2545     2545  familiarity\n"
        "toolbox-mrc      norms  glasgow_mrc  en         2545     2545  familiarity\n"
        "\n"
        "Dimensions:\n"
        "dimension    scale_min  scale_max  ratings\n"
        "-----------  ---------  ---------  -------\n"
        "familiarity          1          7     5090\n"
        "\n"
        "Raters:\n"
        "rater            kind  items  ratings\n"
        "---------------  ----  -----  -------\n"
        "toolbox-glasgow  norm   2545     2545\n"
        "toolbox-mrc      norm   2545     2545\n"
    )
    as_json = json.loads(run(runner, "status", "--study", study, "--db", db_url, "--format", "json").stdout)
    assert as_json == json.loads(run(runner, "status", "--study", study, "--db", db_url, "--json").stdout)
    assert (as_json["store"], as_json["items"], as_json["ratings"]) == (url, 2545, 5090)
    assert [d["name"] for d in as_json["datasets"]] == ["toolbox-glasgow", "toolbox-mrc"]
    as_csv = run(runner, "status", "--study", study, "--db", db_url, "-f", "csv").stdout
    blocks = as_csv.split("\n\n")  # (CliRunner shows CSV's CRLF line ends as \n)
    assert blocks[0] == f"# store\nstore,items,ratings\n{url},2545,5090"
    assert blocks[1].startswith("# datasets\ndataset,kind,preset,language,items,ratings,dimensions\n")
    assert [b.split("\n")[0] for b in blocks] == [
        "# store",
        "# datasets",
        "# dimensions",
        "# raters",
        "# item sets",
        "# recent rating jobs",
    ]


def test_import_preset_and_reimport(runner, tmp_path, shared_data, db_url):
    f = shared_data / "glasgow" / "glasgow_norms.csv"
    args = ["import", f, "--dataset", "glasgow", "--preset", "glasgow", "--db", db_url, "--study", tmp_path / "none.yaml"]
    out = run(runner, *args).output
    assert out == (
        "glasgow: imported 5553 items, 49977 ratings (arousal, valence, dominance, concreteness, "
        "imageability, familiarity, aoa, size, gender)\n"
    )
    assert run(runner, *args).output == "glasgow: unchanged (already imported from this file)\n"


def test_import_generic_columns_with_rescale(runner, tmp_path, db_url):
    f = tmp_path / "mrc.csv"
    f.write_text("word;fam;fam_sd\nabbey;431;12,5\nzebra;520;NA\ndog;0;\n", encoding="cp1252")
    out = run(
        runner,
        "import",
        f,
        "--dataset",
        "mrcish",
        "--item-column",
        "word",
        "--rating",
        "familiarity=fam,sd=fam_sd",
        "--scale",
        "familiarity=100:700",
        "--rescale",
        "familiarity=0.01",
        "--decimal",
        ",",
        "--db",
        db_url,
        "--study",
        tmp_path / "none.yaml",
        code=1,
    )
    # 0 is outside 100-700 without the mrc preset's "0 means missing"
    assert out.stderr.startswith(f"Error: {f}: 1 problem: row 4, column 'fam', value '0': outside the familiarity scale 100-700.")
    f.write_text("word;fam;fam_sd\nabbey;431;12,5\nzebra;520;NA\n", encoding="cp1252")
    out = run(
        runner,
        "import",
        f,
        "--dataset",
        "mrcish",
        "--item-column",
        "word",
        "--rating",
        "familiarity=fam,sd=fam_sd",
        "--scale",
        "familiarity=100:700",
        "--rescale",
        "familiarity=0.01",
        "--decimal",
        ",",
        "--db",
        db_url,
        "--study",
        tmp_path / "none.yaml",
    )
    assert out.output == "mrcish: imported 2 items, 2 ratings (familiarity)\n"
    csv_out = run(
        runner,
        "sql",
        "SELECT item, value, sd FROM ratings ORDER BY item",
        "--format",
        "csv",
        "--db",
        db_url,
        "--study",
        tmp_path / "none.yaml",
    )
    assert csv_out.output == "item,value,sd\nabbey,4.31,0.125\nzebra,5.2,\n"


def test_import_needs_a_layout(runner, tmp_path, db_url):
    f = tmp_path / "x.csv"
    f.write_text("w,v\na,1\n")
    out = run(runner, "import", f, "--dataset", "x", "--db", db_url, code=1)
    assert out.stderr == (
        "Error: Say how to read the file: --preset NAME, or --item-column COL and --rating DIM=MEAN_COL "
        "(presets: glasgow, lancaster, brysbaert2014, warriner2013, kuperman2012, mrc, glasgow_mrc).\n"
    )
    out = run(runner, "import", f, "--dataset", "x", "--preset", "nope", "--db", db_url, code=1)
    assert out.stderr == (
        "Error: Unknown preset 'nope'. Presets: glasgow, lancaster, brysbaert2014, warriner2013, kuperman2012, mrc, glasgow_mrc.\n"
    )
    out = run(runner, "import", f, "--dataset", "x", "--preset", "brysbaert", "--db", db_url, code=1)
    assert out.stderr.startswith("Error: Unknown preset 'brysbaert'. Did you mean 'brysbaert2014'? Presets: glasgow,")


def test_missing_study_file_is_one_clear_line(runner, tmp_path):
    out = run(runner, "plan", "--study", tmp_path / "nope.yaml", code=1)
    assert out.stderr == (
        f"Error: {tmp_path / 'nope.yaml'}: no study file here. Create one with `workbench init DIR`, or pass --study PATH.\n"
    )
    assert "Traceback" not in out.output


def test_bad_study_file_names_the_field(runner, tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text("study: x\ndimensions:\n  fam: {scale: [7, 1]}\n")
    out = run(runner, "validate", "--study", study, code=1)
    assert out.stderr == (f"Error: {study}: dimensions.fam.scale: scale [7, 1]: the minimum must be below the maximum. {SCHEMA_HINT}\n")
    study.write_text("study: x\ndatasets:\n  g: {file: g.csv, preset: glasgow, colour: red}\n")
    out = run(runner, "validate", "--study", study, code=1)
    assert out.stderr == f"Error: {study}: datasets.g.colour: Extra inputs are not permitted. {SCHEMA_HINT}\n"
    # several problems: every one of them, one per line
    study.write_text("study: x\ndimensions:\n  fam: {scale: [7, 1]}\ndatasets:\n  g: {file: g.csv, preset: glasgow, colour: red}\n")
    out = run(runner, "validate", "--study", study, code=1)
    assert out.stderr == (
        f"Error: {study}: 2 problems:\n"
        "  - dimensions.fam.scale: scale [7, 1]: the minimum must be below the maximum\n"
        "  - datasets.g.colour: Extra inputs are not permitted\n"
        f"{SCHEMA_HINT}\n"
    )
    study.write_text("study: x\n  bad: [\n")
    out = run(runner, "validate", "--study", study, code=1)
    assert out.stderr.startswith(f"Error: {study}: line 2, column")


def test_db_current_and_upgrade(runner, tmp_path):
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    from workbench.store import migrate

    out = run(runner, "db", "upgrade", "--db", url)
    head = migrate.MIGRATIONS_DIR and out.output.split()[-1].rstrip(".")
    assert out.output == f"{url}: upgraded from empty to {head}.\n"
    assert run(runner, "db", "upgrade", "--db", url).output == f"{url}: already at revision {head}.\n"
    width = len(url)
    assert run(runner, "db", "current", "--db", url).output == (
        f"{'store'.ljust(width)}  revision  state       needed\n"
        f"{'-' * width}  --------  ----------  ------\n"
        f"{url}  {head}      up to date  {head}\n"
    )
    assert json.loads(run(runner, "db", "current", "--db", url, "--format", "json").stdout) == [
        {"store": url, "revision": head, "state": "up to date", "needed": head}
    ]


@pytest.mark.parametrize("group", [[], ["annotate"], ["finetune"], ["db"]])
def test_help_lists_each_command_whole(runner, group):
    """Each command's first sentence is shown whole in the command list, never cut with "...", at 80 columns."""
    out = runner.invoke(app, [*group, "--help"], terminal_width=80)
    assert out.exit_code == 0
    listing = out.output.split("Commands:")[1]
    assert "..." not in listing
    assert all(len(line) <= 80 for line in listing.splitlines())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_rate_and_finetune_before_apply_say_apply_not_did_you_mean(runner, tmp_path, db_url):
    """The exact name of a declared rater (a fine-tune named like its dimension) before `apply`: the error says the study
    declares it and the store lacks it yet; it never answers "Did you mean" with the very name given."""
    import yaml

    (tmp_path / "gold.csv").write_text("word,fam\n" + "".join(f"w{i:02d},{1 + i % 7}\n" for i in range(60)), encoding="utf-8")
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "study": "early", "database": db_url, "dimensions": {"familiarity": {"scale": [1, 7], "step": 1}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "splits": {"ft": {"from": "gold", "train": 40, "seed": 3}},
        "raters": {"familiarity": {"backend": "openai", "model": "gpt-4o-mini-2024-07-18", "base_url": "http://127.0.0.1:9/v1",
                                   "api_key_env": "WORKBENCH_TEST_UNSET_KEY", "items": "ft.test"}},
        "finetunes": {"familiarity-ft": {"backend": "openai", "base": "familiarity", "train": "ft.train", "gold": "gold"}},
    }), encoding="utf-8")  # fmt: skip
    expected = "Error: dimension 'familiarity' is declared in the study but not in the store yet: run `workbench apply` first.\n"
    assert run(runner, "rate", "familiarity", "--study", study, code=1).stderr == expected
    assert run(runner, "finetune", "start", "familiarity-ft", "--study", study, code=1).stderr == expected
    typo = run(runner, "rate", "familiarty", "--study", study, code=1).stderr
    assert typo.endswith("Did you mean 'familiarity'?\n")
