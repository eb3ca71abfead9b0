"""A backend defined here, in the test, registers and rates through `workbench apply` and `workbench rate`.

Nothing in the workbench package is touched: the `constant` backend is one
class with its Options and `run`, and one @register_backend. The same file
checks what the registry promises: every built-in backend registers itself,
an unknown name gets a suggestion, and an option a backend does not take is
named with the backend.
"""

from __future__ import annotations

import re
from typing import ClassVar

import pytest
import yaml
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from workbench.cli.main import app
from workbench.errors import WorkbenchError
from workbench.raters.backend import (
    Outcome,
    RaterBackend,
    RaterOptions,
    backend_names,
    get_backend,
    in_chunks,
    register_backend,
)
from workbench.raters.readout import Readout
from workbench.store import connect
from workbench.store.models import Job, Rater, Rating
from workbench.study.load import load_study

WORDS = [f"w{i:02d}" for i in range(25)]


class ConstantOptions(RaterOptions):
    value: float = Field(4.0, description="the rating every item gets")
    fail: list[str] = Field(default_factory=list, description="items that fail (to test the exit code)")

    run_fields: ClassVar[frozenset[str]] = RaterOptions.run_fields | {"fail"}


@register_backend("constant")
class Constant(RaterBackend):
    """Rates every item with the same value."""

    Options = ConstantOptions
    kind = "model"

    def run(self, rater, texts, job):
        for ids, words in in_chunks(texts, 10):
            for item_id, word in zip(ids, words, strict=True):
                if word in rater.spec.fail:
                    job.writer.add(Outcome(item_id, None, error="told to fail"))
                else:
                    job.writer.add(Outcome(item_id, Readout(value=rater.spec.value, answer=word)))
            job.report()
        return "completed" if job.writer.counts["failed"] == 0 else "partial"


def write_study(folder, db_url: str, raters: dict) -> str:
    (folder / "gold.csv").write_text("word,fam\n" + "".join(f"{w},{1 + i % 7}\n" for i, w in enumerate(WORDS)), encoding="utf-8")
    study = {
        "study": "registry",
        "database": db_url,
        "dimensions": {"familiarity": {"scale": [1, 7]}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "raters": raters,
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return str(path)


def invoke(*args: str, code: int = 0):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result


def test_a_backend_defined_in_a_test_rates_through_apply_and_rate(tmp_path, db_url):
    study = write_study(tmp_path, db_url, {"flat": {"backend": "constant", "value": 3.5}})
    invoke("validate", "--study", study)
    applied = invoke("apply", "--study", study)
    assert re.search(r"flat \(constant\): job \d+ completed: 25 rated, 0 answers with no rating, 0 failed\.", applied.output)
    engine = connect(db_url)
    with Session(engine) as s:
        values = s.scalars(select(Rating.value).join(Rater).where(Rater.name == "flat")).all()
        rater = s.scalar(select(Rater).where(Rater.name == "flat"))
        job = s.scalar(select(Job).where(Job.rater_id == rater.id))
    assert values == [3.5] * len(WORDS)
    assert rater.kind == "model" and rater.config == {
        "backend": "constant",
        "dimension": "familiarity",
        "scale": [1.0, 7.0, 1.0],
        "value": 3.5,
    }
    assert job.kind == "rate:constant" and job.status == "completed" and job.config["requested"] == len(WORDS)
    assert "Nothing to do" in invoke("apply", "--study", study).output  # resumes: all rated
    # another value is another rater; `workbench rate` runs it, --limit included
    study = write_study(tmp_path, db_url, {"flat": {"backend": "constant", "value": 6}})
    rated = invoke("rate", "flat", "--limit", "5", "--study", study)
    assert re.search(r"flat \(constant\): job \d+ completed: 5 rated", rated.output)
    with Session(engine) as s:
        names = set(s.scalars(select(Rater.name).where(Rater.kind == "model")))
    assert names == {"flat", f"flat@{rater.config_hash[:8]}"}
    engine.dispose()


def test_failed_items_exit_2_and_the_next_run_retries_them(tmp_path, db_url):
    study = write_study(tmp_path, db_url, {"flaky": {"backend": "constant", "fail": ["w03", "w07"]}})
    applied = invoke("apply", "--study", study, code=2)
    assert "23 rated, 0 answers with no rating, 2 failed." in applied.output
    assert "2 item(s) failed and have no rating yet: run the command again to retry them." in applied.stderr
    rated = invoke("rate", "flaky", "--study", study, code=2)  # still failing: the same two
    assert re.search(r"job \d+ partial: 0 rated, 0 answers with no rating, 2 failed\.", rated.output)
    # fixed: the next run rates only those two, and exits 0
    study = write_study(tmp_path, db_url, {"flaky": {"backend": "constant", "fail": []}})
    assert re.search(r"job \d+ completed: 2 rated", invoke("rate", "flaky", "--study", study).output)


def test_every_built_in_backend_registers_itself():
    assert {"openai", "openai-batch", "openai-completions", "local", "wordfreq", "embedding"} <= set(backend_names())
    assert get_backend("wordfreq").kind == "model" and get_backend("local").kind == "llm"


def test_unknown_backend_and_unknown_option_are_named(tmp_path):
    study = write_study(tmp_path, "sqlite:///x.db", {"flat": {"backend": "constnat"}})
    with pytest.raises(WorkbenchError, match=r"raters\.flat: unknown backend 'constnat'\. Did you mean 'constant'\?"):
        load_study(study)
    study = write_study(tmp_path, "sqlite:///x.db", {"flat": {"backend": "constant", "valeu": 2}})
    with pytest.raises(
        WorkbenchError, match=r"raters\.flat\.valeu: the constant backend does not take this option\. Did you mean 'value'\?"
    ):
        load_study(study)
    study = write_study(tmp_path, "sqlite:///x.db", {"zipf": {"backend": "wordfreq", "prompt": "Rate {item}"}})
    result = invoke("validate", "--study", study, code=1)
    assert "raters.zipf.prompt: the wordfreq backend does not take this option" in result.stderr


# identities computed by the workbench before backends were registered classes (commit bf2c98c): the
# same configuration must keep its identity, so an upgraded workbench resumes the raters it made
IDENTITIES_BEFORE_THE_REGISTRY = {
    "chat": ({"backend": "openai", "model": "gpt-4o-mini", "base_url": "http://x/v1", "concurrency": 4},
             "dbc03f98a80d301a9d60e3bfcd70d39dd920943f1a9dcef5e3026e73aabb6c3f"),
    "chats": ({"backend": "openai", "model": "gpt-4o-mini", "readout": "samples", "system": "Be brief."},
              "f943b34edf676e8818dbac37c7011a918f41803c022fa40497d73395f8f9edde"),
    "batch": ({"backend": "openai-batch", "model": "gpt-4o-mini", "readout": "greedy", "poll_seconds": 3,
               "few_shot": {"items": "tr", "gold": "gold", "n": 3}},
              "099bbd311bf3eec1ff714decbf0ac002bdd92ae4d99c6abb2b00cd596004a6ab"),
    "zipf": ({"backend": "wordfreq"}, "01ded8d8bc6ace69e9bce8bcef33e19eb98eea41db8544376d7818b480c875fb"),
    "freq": ({"backend": "wordfreq", "train": "tr", "gold": "gold"},
             "284adac6b48d3fda11b86d8d4ce50fc340c605285b98ced7336091641a2483f7"),
}  # fmt: skip


def test_a_configuration_keeps_the_identity_it_had_before_the_registry(tmp_path):
    from workbench.study.apply import apply_study
    from workbench.study.load import LoadedStudy
    from workbench.study.rate import resolve

    (tmp_path / "gold.csv").write_text("word,fam\n" + "".join(f"w{i},{1 + i % 7}\n" for i in range(40)), encoding="utf-8")
    study = {
        "study": "idcheck",
        "database": f"sqlite:///{tmp_path / 'store.db'}",
        "dimensions": {"familiarity": {"scale": [1, 7], "labels": {1: "unfamiliar", 7: "familiar"}}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "item_sets": {"tr": {"from": "gold", "sample": 20}},
        "raters": {name: options for name, (options, _) in IDENTITIES_BEFORE_THE_REGISTRY.items()},
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    loaded = load_study(tmp_path / "study.yaml")
    engine = connect(loaded.study.database)
    apply_study(engine, LoadedStudy(loaded.path, loaded.study.model_copy(update={"raters": {}})))
    with Session(engine) as s:
        got = {name: resolve(s, loaded, name).hash for name in IDENTITIES_BEFORE_THE_REGISTRY}
    engine.dispose()
    assert got == {name: digest for name, (_, digest) in IDENTITIES_BEFORE_THE_REGISTRY.items()}
