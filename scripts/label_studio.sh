#!/usr/bin/env bash
# Installs Label Studio (the annotation server that `workbench annotate` and its
# tests talk to) into a virtualenv of its own: it pins its own Django stack, so
# it must stay out of the workbench's environment. Idempotent (stamp file).
#
# Also makes a migrated, empty data directory ($LS_VENV/pristine): Label Studio
# runs some 200 Django migrations on a new database, which takes minutes on a
# small machine; servers started by the tests and by `workbench annotate serve`
# begin from a copy of it instead.
#
# Also installs gunicorn into it: `workbench annotate serve --database ...` runs
# Label Studio's WSGI application under gunicorn (several worker processes),
# the production server; the SQLite development server needs nothing more.
#
# Prints the path of the `label-studio` executable on stdout.
#   WORKBENCH_LS_VENV   where the virtualenv goes (default $WORKBENCH_CACHE_DIR or ~/.cache/workbench, /label-studio-venv)
#   LABEL_STUDIO_SPEC   what to install (default: the version the tests were written against)
set -euo pipefail
LS_VENV="${WORKBENCH_LS_VENV:-${WORKBENCH_CACHE_DIR:-$HOME/.cache/workbench}/label-studio-venv}"
SPEC="${LABEL_STUDIO_SPEC:-label-studio==1.23.2}"
SERVER_SPEC="${LABEL_STUDIO_SERVER_SPEC:-gunicorn>=23}"
PY="${PYTHON:-python3}"
STAMP="$LS_VENV/.workbench-$(echo "$SPEC" | sha1sum | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
  echo "Installing $SPEC into $LS_VENV (about 1 GB, a few minutes)" >&2
  mkdir -p "$(dirname "$LS_VENV")"
  [ -x "$LS_VENV/bin/python" ] || "$PY" -m venv "$LS_VENV"
  "$LS_VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  "$LS_VENV/bin/python" -m pip install -q --disable-pip-version-check "$SPEC" >&2
  "$LS_VENV/bin/python" -c "import label_studio" || { echo "label-studio did not install into $LS_VENV" >&2; exit 1; }
  rm -rf "$LS_VENV/pristine"
  touch "$STAMP"
fi
if [ ! -x "$LS_VENV/bin/gunicorn" ]; then
  echo "Installing $SERVER_SPEC into $LS_VENV (the production web server)" >&2
  "$LS_VENV/bin/python" -m pip install -q --disable-pip-version-check "$SERVER_SPEC" >&2
fi
if [ ! -f "$LS_VENV/pristine/.done" ]; then
  echo "Migrating an empty Label Studio database (once; minutes)" >&2
  rm -rf "$LS_VENV/pristine.tmp"
  mkdir -p "$LS_VENV/pristine.tmp"
  # what `label-studio start` does first, without starting the server
  LABEL_STUDIO_BASE_DATA_DIR="$LS_VENV/pristine.tmp" COLLECT_ANALYTICS=false LATEST_VERSION_CHECK=false \
    "$LS_VENV/bin/python" -c "from label_studio.server import _setup_env, _apply_database_migrations
_setup_env()
_apply_database_migrations()" >/dev/null
  rm -f "$LS_VENV/pristine.tmp/.env"  # the secret key: each server makes its own
  touch "$LS_VENV/pristine.tmp/.done"
  rm -rf "$LS_VENV/pristine"
  mv "$LS_VENV/pristine.tmp" "$LS_VENV/pristine"
fi
echo "$LS_VENV/bin/label-studio"
