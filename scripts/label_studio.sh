#!/usr/bin/env bash
# Installs Label Studio (the annotation server that `workbench annotate` and its
# tests talk to) into a virtualenv of its own: it pins its own Django stack, so
# it must stay out of the workbench's environment. Idempotent (stamp file).
# Prints the path of the `label-studio` executable on stdout.
#   WORKBENCH_LS_VENV   where the virtualenv goes (default ~/.cache/workbench/label-studio-venv)
#   LABEL_STUDIO_SPEC   what to install (default the version the tests were written against)
set -euo pipefail
LS_VENV="${WORKBENCH_LS_VENV:-$HOME/.cache/workbench/label-studio-venv}"
SPEC="${LABEL_STUDIO_SPEC:-label-studio==1.23.2}"
PY="${PYTHON:-python3}"
STAMP="$LS_VENV/.workbench-$(echo "$SPEC" | sha1sum | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
  echo "Installing $SPEC into $LS_VENV (about 1 GB, a few minutes)" >&2
  mkdir -p "$(dirname "$LS_VENV")"
  [ -x "$LS_VENV/bin/python" ] || "$PY" -m venv "$LS_VENV"
  "$LS_VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  "$LS_VENV/bin/python" -m pip install -q --disable-pip-version-check "$SPEC" >&2
  "$LS_VENV/bin/label-studio" --version >/dev/null 2>&1 || { echo "label-studio did not install into $LS_VENV" >&2; exit 1; }
  touch "$STAMP"
fi
echo "$LS_VENV/bin/label-studio"
