#!/usr/bin/env bash
# Run the test suite: installs what the tests need on first run, needs the
# PostgreSQL server on 127.0.0.1:5432 (user postgres, trust auth). Extra
# arguments go to pytest, e.g. scripts/test.sh -k import
set -euo pipefail
source "$(dirname "$0")/_venv.sh" test
cd "$ROOT"
python -m workbench.study.schema --check
python -m workbench.analysis.report_model --check
python -m pytest -q -n 2 "$@"
