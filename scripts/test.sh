#!/usr/bin/env bash
# Run the test suite: installs what the tests need on first run, needs the
# PostgreSQL server on 127.0.0.1:5432 (user postgres, trust auth). Extra
# arguments go to pytest, e.g. scripts/test.sh -k import
#
#   scripts/test.sh            everything (what CI runs)
#   scripts/test.sh --quick    the quick tier (pytest -m quick, tests/conftest.py): no Label Studio, no
#                              llama-server, no real local model, no wheel build, no slow test; builds
#                              and installs none of them (a few minutes on 2 cores)
set -euo pipefail
QUICK=
if [ "${1:-}" = "--quick" ]; then
  QUICK=1
  shift
fi
source "$(dirname "$0")/_venv.sh" test
if [ -z "$QUICK" ]; then
  # Debian's Chromium renders the HTML report in a browser test (skipped when it cannot be had)
  if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Installing chromium (Debian) for the report's browser test" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "Could not install chromium: the browser test will be skipped" >&2
  fi
  # Label Studio in its own virtualenv (it pins its own Django) for tests/test_annotate.py
  bash "$ROOT/scripts/label_studio.sh" >/dev/null
  export WORKBENCH_REQUIRE_LABEL_STUDIO=1
  # llama.cpp's own llama-server, built from source once (~25 minutes on 2 idle cores; cached under ~/.cache/workbench),
  # for tests/test_llama_server.py: the openai-completions and openai backends against a real llama.cpp server
  WORKBENCH_LLAMA_SERVER="$(bash "$ROOT/scripts/llama_server.sh")"
  export WORKBENCH_LLAMA_SERVER WORKBENCH_REQUIRE_LLAMA_SERVER=1
fi
cd "$ROOT"
python -m ruff check .
python -m ruff format --check .
python -m workbench.study.schema --check
python -m workbench.analysis.report_model --check
if [ -n "$QUICK" ]; then
  python -m pytest -q -n 2 -m quick "$@"
else
  python -m pytest -q -n 2 "$@"
fi
