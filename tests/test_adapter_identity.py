"""A local tuned rater (a LoRA adapter folder as its model) keeps its identity when the study folder moves.

Its identity held the adapter folder's absolute path, so moving or cloning
the study re-rated everything. It now holds the folder relative to the study
and, as before, the weights' fingerprint (the base model's and the
adapter's): the same adapter elsewhere is the same rater; other weights are
another rater.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from sqlalchemy.orm import Session

from workbench.store import connect
from workbench.study.apply import apply_study
from workbench.study.load import LoadedStudy, load_study
from workbench.study.rate import resolve

ADAPTER = ".workbench/finetunes/gemma-ft"


def _study(folder: Path, adapter_bytes: bytes = b"weights-1") -> Path:
    folder.mkdir(parents=True)
    (folder / "gold.csv").write_text("word,fam\n" + "".join(f"w{i},{1 + i % 7}\n" for i in range(20)), encoding="utf-8")
    adapter = folder / ADAPTER
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16}))
    (adapter / "adapter_model.safetensors").write_bytes(adapter_bytes)
    (adapter / "finetune.json").write_text(json.dumps({"key": {"settings": {"base_model": "gemma3-270m"}}}))
    study = {
        "study": "moved",
        "database": "store.db",
        "dimensions": {"familiarity": {"scale": [1, 7]}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        # the model as `apply` writes a tuned rater's: the adapter folder's absolute path
        "raters": {"tuned": {"backend": "local", "model": str(adapter.resolve())}, "base": {"backend": "local"}},
    }
    (folder / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    return folder / "study.yaml"


def _identities(path: Path) -> dict[str, tuple[str, dict]]:
    loaded = load_study(path)
    engine = connect(f"sqlite:///{path.parent / 'store.db'}")
    try:
        apply_study(engine, LoadedStudy(loaded.path, loaded.study.model_copy(update={"raters": {}})))
        with Session(engine) as s:
            out = {}
            for name in ("tuned", "base"):
                r = resolve(s, loaded, name)
                out[name] = (r.hash, r.identity)
            return out
    finally:
        engine.dispose()


def test_a_moved_study_keeps_its_tuned_raters_identity(tmp_path):
    first = _identities(_study(tmp_path / "lab" / "study"))
    shutil.copytree(tmp_path / "lab" / "study", tmp_path / "elsewhere" / "clone")
    clone = tmp_path / "elsewhere" / "clone" / "study.yaml"
    spec = yaml.safe_load(clone.read_text())
    spec["raters"]["tuned"]["model"] = str((clone.parent / ADAPTER).resolve())  # where apply points it after the move
    clone.write_text(yaml.safe_dump(spec, sort_keys=False))
    moved = _identities(clone)
    assert moved["tuned"][0] == first["tuned"][0]
    assert first["tuned"][1]["model"] == "adapter:" + ADAPTER
    assert str(tmp_path) not in json.dumps(first["tuned"][1])  # no absolute path in the identity
    assert first["tuned"][1]["weights"].startswith("sha256:")
    assert moved["base"] == first["base"]  # a rater without an adapter: untouched
    assert first["base"][1]["model"] == "gemma3-270m"


def test_other_adapter_weights_are_another_rater(tmp_path):
    one = _identities(_study(tmp_path / "a"))
    other = _identities(_study(tmp_path / "b", adapter_bytes=b"weights-2"))
    assert one["tuned"][1]["model"] == other["tuned"][1]["model"]
    assert one["tuned"][0] != other["tuned"][0]
    assert one["base"][0] == other["base"][0]
