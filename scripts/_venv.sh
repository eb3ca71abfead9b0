# Sourced by demo.sh and test.sh: a project virtualenv with workbench installed (editable) and the given extra.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WORKBENCH_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
STAMP="$VENV/.workbench-$1-$(cat "$ROOT/pyproject.toml" | sha1sum | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
  echo "Installing workbench[$1] into $VENV" >&2
  python -m pip install -q --disable-pip-version-check --upgrade pip >&2
  # The CPU build of torch that lies on this machine's disk; a plain `torch`
  # requirement would download a multi-GB CUDA build. TORCH_SPEC overrides it.
  python -m pip install -q --disable-pip-version-check "${TORCH_SPEC:-torch==2.13.0}" >&2
  python -m pip install -q --disable-pip-version-check -e "$ROOT[$1]" >&2
  touch "$STAMP"
fi
