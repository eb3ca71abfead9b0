import json

import jsonschema
import yaml

from tests.test_cli import ROOT
from workbench.study.schema import SCHEMA_PATH, render


def test_checked_in_schema_is_generated_from_the_models():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), "run: python -m workbench.study.schema"


def test_example_studies_validate_against_the_schema():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    for path in sorted((ROOT / "examples").glob("*/study.yaml")) + [ROOT / "workbench/templates/study/study.yaml"]:
        jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema)


def test_checked_in_report_schema_is_generated_from_the_models():
    from workbench.analysis.report_model import SCHEMA_PATH as REPORT_SCHEMA
    from workbench.analysis.report_model import schema

    assert json.loads(REPORT_SCHEMA.read_text(encoding="utf-8")) == schema(), "run: python -m workbench.analysis.report_model"
