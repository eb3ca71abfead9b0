"""One CLI convention, checked on the real command list (app.registered_commands and its sub-typers).

Every command has help and an example in README.md; every command takes
-f/--format table|csv|json (the one OutputFormat enum, listed in --help) and,
run with --format json in a small applied study (SQLite and PostgreSQL; the
Label Studio commands against a real server), prints one JSON document that
parses; a file is written with -o/--out; repeatable flags are singular
(--rater, --gold); importing the CLI loads no heavy library.

The set of commands is found by walking the Typer app, never named by hand:
a new command without --format fails `test_every_command_takes_the_one_format_option`,
and one that no JSON run covers fails `test_every_command_is_run_with_format_json`.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from workbench.cli.display import show
from workbench.cli.main import app
from workbench.cli.options import Format
from workbench.output import OutputFormat

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["scipy", "pandas", "matplotlib", "duckdb", "torch", "openai", "sqlalchemy", "alembic", "pyarrow",
         "numpy", "pydantic", "workbench.analysis.report", "transformers", "aiohttp"]  # fmt: skip


def _name(info) -> str:
    return info.name or info.callback.__name__.rstrip("_").replace("_", "-")


def registered(typer_app: typer.Typer, prefix: str = "") -> list[str]:
    """Command paths from the Typer registrations themselves ("status", "db current", ...)."""
    out = [f"{prefix}{_name(c)}" for c in typer_app.registered_commands]
    for group in typer_app.registered_groups:
        out += registered(group.typer_instance, f"{prefix}{group.name} ")
    return out


def click_commands(group, prefix: str = "") -> dict:
    """The commands as the CLI runs them (Typer's own click: groups are the ones with sub-commands)."""
    out = {}
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            out |= click_commands(cmd, f"{prefix}{name} ")
        else:
            out[f"{prefix}{name}"] = cmd
    return out


def _enum(param):
    """The Enum a Typer parameter is declared with (None if it is not one)."""
    annotation = param.type_descriptor.annotation
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return candidate
    return None


def _is_option(param) -> bool:
    return type(param).__name__.endswith("Option")


COMMANDS = click_commands(typer.main.get_command(app))


def test_the_walk_sees_every_command():
    assert sorted(registered(app)) == sorted(COMMANDS)
    assert {"init", "validate", "plan", "apply", "import", "status", "export", "rate", "report", "sql",
            "db upgrade", "db current"} <= set(COMMANDS)  # fmt: skip


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_command_has_help_and_a_readme_example(path):
    cmd = COMMANDS[path]
    assert (cmd.help or "").strip(), f"`workbench {path}` has no help text (a docstring)"
    for param in cmd.params:
        if _is_option(param) and param.name != "help":
            assert (param.help or "").strip() or param.name in ("study", "db"), f"{path} {param.opts} has no help"
    result = CliRunner().invoke(app, [*path.split(), "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"workbench {re.escape(path)}\b", readme), f"README.md lacks an example of `workbench {path}`"


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_options_follow_the_convention(path):
    cmd = COMMANDS[path]
    for param in cmd.params:
        if not _is_option(param):
            continue
        if "--format" in param.opts:
            choices = _enum(param)
            assert choices is not None, f"{path}: --format is not an enum"
            assert "-f" in param.opts, f"{path}: --format has no -f"
            help_text = CliRunner().invoke(app, [*path.split(), "--help"]).output
            assert "|".join(c.value for c in choices) in help_text
        if param.name in ("out", "output"):
            assert {"-o", "--out"} <= set(param.opts), f"{path}: a file is written with -o/--out, not {param.opts}"
        if param.multiple:
            long = [o for o in param.opts if o.startswith("--")]
            assert long and not long[0].endswith("s") or long[0] in ("--na",), f"{path}: repeatable {long} is not singular"


def lacking_format(commands: dict) -> list[str]:
    """The commands (path -> click command) without -f/--format of the one OutputFormat enum.

    Every command prints its result, rows or a status, so every command must take it: no list of
    "commands that print rows" to keep up to date, nothing a new command can slip past.
    """
    bad = []
    for path, cmd in commands.items():
        fmt = [p for p in cmd.params if _is_option(p) and "--format" in p.opts]
        if len(fmt) != 1 or "-f" not in fmt[0].opts or _enum(fmt[0]) is not OutputFormat:
            bad.append(path)
    return sorted(bad)


def test_every_command_takes_the_one_format_option():
    assert lacking_format(COMMANDS) == []


def test_the_format_rule_flags_a_command_without_the_option():
    """The rule is not vacuous: a command defined here that prints rows without --format is caught; one with it passes."""
    demo = typer.Typer()

    @demo.command()
    def listing() -> None:
        typer.echo("word,value")

    @demo.command()
    def texts(fmt: str = typer.Option("text", "--format", "-f")) -> None:  # a --format that is not the enum
        typer.echo(fmt)

    @demo.command()
    def rows(fmt: Format = OutputFormat.table) -> None:
        show(fmt, ["word"], [["apple"]])

    found = click_commands(typer.main.get_command(demo))
    assert sorted(found) == ["listing", "rows", "texts"]
    assert lacking_format(found) == ["listing", "texts"]


def test_importing_the_cli_loads_no_heavy_library():
    code = f"import sys, workbench.cli.main\nheavy = [m for m in {HEAVY!r} if m in sys.modules]\nprint(','.join(heavy))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported when the CLI loads: {done.stdout.strip()}"


# ---- every command, run with --format json: stdout is one JSON document -----------------------------------------

LABEL_STUDIO = {
    "annotate serve",
    "annotate invite",
    "annotate push",
    "annotate pull",
    "annotate round",
    "annotate status",
    "annotate annotators",
}  # a server, or a campaign pushed to one
STORE = set(COMMANDS) - LABEL_STUDIO  # everything else runs in a small applied study, on SQLite and PostgreSQL


def test_every_command_is_run_with_format_json():
    """Every command the walk finds belongs to one of the two runs below, and each run asserts that it ran its whole set:
    the store run takes every command that needs no Label Studio, so a new command fails it until it is run there."""
    assert LABEL_STUDIO <= set(COMMANDS), f"renamed or gone: {LABEL_STUDIO - set(COMMANDS)}"
    assert STORE and not STORE & LABEL_STUDIO


class JsonRuns:
    """Invokes commands with --format json; records which ran; returns each one's parsed stdout.

    It also counts the reads of the study file (the real loader, counted): each command reads it at most once.
    """

    def __init__(self, monkeypatch) -> None:
        import workbench.study.load as study_load

        self.ran: set[str] = set()
        self.loads = 0
        real = study_load.load_study

        def counted(*args, **kwargs):
            self.loads += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(study_load, "load_study", counted)

    def __call__(self, *args, code: int = 0):
        args = [str(a) for a in args]
        path = " ".join(args[:2]) if " ".join(args[:2]) in COMMANDS else args[0]
        assert path in COMMANDS, args
        self.loads = 0
        result = CliRunner().invoke(app, [*args, "--format", "json"])
        assert result.exit_code == code, (args, result.output[-3000:], result.exception)
        assert self.loads <= 1, f"`workbench {' '.join(args)}` read the study file {self.loads} times"
        self.ran.add(path)
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"`workbench {' '.join(args)} --format json` printed what is not one JSON document: "
                                 f"{exc}\n{result.stdout[:2000]}") from None  # fmt: skip


WORDS = [f"word{i:03d}" for i in range(60)]
KEY_ENV = "WORKBENCH_TEST_OPENAI_KEY"
OPENAI_SERVER = {"latency": 0}  # `openai_server`: tests/conftest.py


def _store_study(folder: Path, db_url: str, base_url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    gold = "word,fam,sd,n\n" + "".join(f"{w},{min(7.0, 1 + (i % 7) + (i % 3) * 0.25)},1.1,20\n" for i, w in enumerate(WORDS))
    (folder / "gold.csv").write_text(gold, encoding="utf-8")
    (folder / "other.csv").write_text("word,fam\n" + "".join(f"{w},{1 + (i * 5 % 7)}\n" for i, w in enumerate(WORDS)))
    study = {
        "study": "formats",
        "database": db_url,
        "dimensions": {"familiarity": {"scale": [1, 7], "step": 1, "instructions": "How familiar is the word?"}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word",
                              "ratings": {"familiarity": {"mean": "fam", "sd": "sd", "n": "n"}}}},
        "splits": {"ft": {"from": "gold", "train": 40, "stratify": "gold", "seed": 3}},
        "raters": {"mini": {"backend": "openai", "model": "gpt-4o-mini-2024-07-18", "base_url": base_url,
                            "api_key_env": KEY_ENV, "items": "ft.test", "readout": "expected"}},
        "finetunes": {"mini-ft": {"backend": "openai", "base": "mini", "train": "ft.train", "gold": "gold",
                                  "rate": "ft.test", "poll_seconds": 0.05}},
        "campaigns": {"pilot": {"items": "ft.test", "raters_per_item": 3, "list_size": 10}},
    }  # fmt: skip
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def test_every_store_command_prints_json_that_parses(tmp_path, db_url, openai_server, monkeypatch):
    openai_server.reset()
    openai_server.set_finetuning(seconds=0.3, fail_with=None)
    monkeypatch.setenv(KEY_ENV, "sk-test-formats")
    monkeypatch.chdir(tmp_path)
    study = _store_study(tmp_path / "study", db_url, openai_server.base_url)
    s = ["--study", study]
    run = JsonRuns(monkeypatch)
    assert run("init", tmp_path / "new")["study"] == str(tmp_path / "new" / "study.yaml")
    assert run("validate", *s)["datasets"][0]["items"] == 60
    steps = run("plan", *s)
    assert {"kind": "dataset", "name": "gold", "action": "import"} in [{k: r[k] for k in ("kind", "name", "action")} for r in steps]
    assert set(steps[0]) == {"kind", "name", "action", "detail"}
    as_csv = CliRunner().invoke(app, ["plan", *map(str, s), "-f", "csv"]).stdout  # the same rows, as CSV
    assert list(csv.DictReader(io.StringIO(as_csv))) == [{k: v or "" for k, v in row.items()} for row in steps]
    applied = run("apply", *s)
    assert applied["changes"] > 0 and [j["rater"] for j in applied["rating_jobs"]][:1] == ["mini"]
    assert run("plan", *s) and run("apply", *s)["changes"] == 0
    assert run("import", tmp_path / "study" / "other.csv", "--dataset", "other", "--item-column", "word",
               "--rating", "familiarity=fam", *s)[0]["status"] == "imported"  # fmt: skip
    assert {d["name"] for d in run("status", *s)["datasets"]} == {"gold", "other"}
    assert run("export", "--dataset", "gold", "-o", tmp_path / "gold.parquet", *s)["format"] == "parquet"
    assert run("rate", "mini", "--dry-run", *s)["dry_run"] is True
    assert run("rate", "mini", *s)["requested"] == 0
    assert run("rater", "show", "mini", *s)["name"] == "mini"
    rep = run("report", "--gold", "gold", "-o", tmp_path / "r.md", "--n-boot", "100", *s)
    assert rep["format"] == "md" and any(r["rater"] == "mini" for r in rep["rows"])
    assert run("sql", "SELECT 1 AS one", *s) == [{"one": 1}]
    assert run("finetune", "status", "mini-ft", *s)["status"] == "succeeded"
    assert run("finetune", "start", "mini-ft", *s)["status"] == "succeeded"
    assert run("finetune", "cancel", "mini-ft", *s)["status"] == "succeeded"
    assert run("db", "current", *s)[0]["state"] == "up to date"
    assert run("db", "upgrade", *s)["upgraded"] is False
    sim = run("annotate", "simulate", "pilot", "--norms", "gold", "--against", "other", "--budget", "0.5", "--n-boot", "100", *s)
    sim_args = ["annotate", "simulate", "pilot", "--norms", "gold", "--against", "other", "--budget", "0.5", "--n-boot", "100", *s]
    table = list(csv.DictReader(io.StringIO(CliRunner().invoke(app, [*map(str, sim_args), "-f", "csv"]).stdout)))
    assert [(r["strategy"], float(r["spearman"])) for r in table] == [(r["strategy"], r["spearman"]) for r in sim["rows"]]
    assert run("annotate", "preview", "pilot", "-o", tmp_path / "p.html", "--no-png", *s)["list"] == 1
    assert run.ran == STORE


def _ls_study(folder: Path) -> Path:
    from tests.test_stack import gold_of

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gold.csv").write_text("word,fam\n" + "".join(f"w{i:03d},{gold_of(i)}\n" for i in range(60)), encoding="utf-8")
    study = {
        "study": "formats" + folder.parent.name[-6:].replace("_", ""),
        "database": "store.db",
        "dimensions": {"familiarity": {"scale": [1, 7], "instructions": "Rate how familiar the word is, 1 to 7."}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "item_sets": {"calib": {"from": "gold", "sample": 25, "seed": 1}, "to_rate": {"from": "gold", "exclude": "calib"}},
        "raters": {"a": {"backend": "noisy-gold", "noise": 0.8, "seed": 1}},
        "hybrids": {"h": {"prior": "a", "calibration": "calib", "gold": "gold", "humans": "pilot", "items": "to_rate"}},
        "campaigns": {
            "plain": {"items": "calib", "raters_per_item": 1, "list_size": 10},
            "pilot": {"items": "to_rate", "raters_per_item": 2, "list_size": 10,
                      "adaptive": {"hybrid": "h", "target_half_width": 0.3, "budget": 50, "first_sample": 4,
                                   "first_uncertain": 4, "max_per_word": 4}},
        },
    }  # fmt: skip
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def _serve(study: Path) -> tuple[subprocess.Popen, dict]:
    """`workbench annotate serve --dev --format json` as people start it: its stdout is one JSON document, then it serves."""
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli.main", "annotate", "serve", "--study", str(study), "--dev",
                             "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    text = ""
    while line := proc.stdout.readline():
        text += line
        try:
            return proc, json.loads(text)
        except json.JSONDecodeError:
            continue
    proc.wait(timeout=60)
    raise AssertionError(f"serve printed no JSON document: {text!r}; stderr: {proc.stderr.read()[-3000:]}")


def test_every_label_studio_command_prints_json_that_parses(tmp_path, monkeypatch):
    """Against a real Label Studio (the development server `serve --dev` starts): serve, invite, push, status,
    annotators, pull, and an adaptive campaign's round and round --pull; SQLite store (the store-level formats run
    on both stores above)."""
    import signal

    import tests.test_stack  # noqa: F401  (registers the noisy-gold backend the hybrid's prior uses)
    from workbench.annotate.server import label_studio_program
    from workbench.errors import WorkbenchError

    try:
        label_studio_program()
    except WorkbenchError as exc:
        if os.environ.get("WORKBENCH_REQUIRE_LABEL_STUDIO"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    study = _ls_study(tmp_path / "study")
    s = ["--study", study]
    run = JsonRuns(monkeypatch)
    run("apply", *s)
    proc, served = _serve(study)
    try:
        run.ran.add("annotate serve")
        assert served["url"].startswith("http://127.0.0.1:") and served["mode"] == "development"
        assert run("annotate", "invite", *s)["invite_url"].startswith(served["url"])
        pushed = run("annotate", "push", "plain", *s)
        assert pushed["campaign"] == "plain" and pushed["lists"] == 3 and pushed["items"] == 25
        assert [row["list_no"] for row in run("annotate", "status", "plain", *s)["lists"]] == [1, 2, 3]
        assert run("annotate", "annotators", "plain", *s) == []
        assert run("annotate", "pull", "plain", *s)["ratings_added"] == 0
        first = run("annotate", "round", "pilot", *s)
        assert first["round"] == 1 and first["words"] == 8 and first["push"]["campaign"] == "pilot.round1"
        assert len(run("annotate", "round", "pilot", "--pull", *s)["pulls"]) == 1
        assert [r["number"] for r in run("annotate", "status", "pilot", *s)["rounds"]] == [1]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert LABEL_STUDIO <= run.ran
