"""Generate schemas/study.schema.json from the pydantic models.

python -m workbench.study.schema          # write it
python -m workbench.study.schema --check  # fail if the checked-in file is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from workbench.study.models import Study

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "study.schema.json"


def _backend_schemas(defs: dict) -> list[dict]:
    """One schema per built-in backend: its Options, with `backend` fixed to its name."""
    from workbench.raters.backend import backend_class, backend_names

    schemas = []
    for name in backend_names():
        cls = backend_class(name)
        if not cls.__module__.startswith("workbench.raters.backends."):
            continue  # registered by a plugin or a test: not part of the checked-in schema
        one = cls.Options.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(one.pop("$defs", {}))
        one["properties"]["backend"] = {"const": name, "description": one["properties"]["backend"].get("description", "")}
        one["title"] = f"backend: {name}"
        schemas.append(one)
    return schemas


def _builtin_trainers() -> list[str]:
    """The built-in fine-tune trainers (plugins and tests may register more: not part of the checked-in schema)."""
    from workbench.finetune.trainer import builtin_trainer_names

    return builtin_trainer_names()


def study_schema() -> dict:
    schema = Study.model_json_schema()
    defs = schema.setdefault("$defs", {})
    backends = _backend_schemas(defs)
    for pattern, value in schema["properties"]["raters"]["patternProperties"].items():
        schema["properties"]["raters"]["patternProperties"][pattern] = {"oneOf": backends, "description": value.get("description", "")}
    defs.pop("RaterOptions", None)
    defs["FinetuneSpec"]["properties"]["backend"]["enum"] = _builtin_trainers()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://workbench.invalid/schemas/study.schema.json"
    return schema


def render() -> str:
    return json.dumps(study_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not SCHEMA_PATH.exists() or SCHEMA_PATH.read_text(encoding="utf-8") != text:
            print(f"{SCHEMA_PATH} is stale: run python -m workbench.study.schema", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
