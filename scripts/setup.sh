#!/usr/bin/env bash
# Idempotent project set-up: Python venv with pinned dependencies, the pmp package, and the Rust
# bulk processor (rust_operators/, built with maturin into an abi3 manylinux_2_28 wheel and installed).
# Re-runs are no-ops unless requirements, the lock file, pyproject.toml or the Rust sources changed.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="${PMP_VENV:-$REPO/.venv}"
source scripts/python.sh
PY="$(find_python)"

log() { echo "[setup] $*"; }

want="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ -x "$VENV/bin/python" ]] && [[ "$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$want" ]]; then
  log "recreating $VENV for Python $want"
  rm -rf "$VENV"
fi
stamp_src=$(cat requirements.txt requirements-dev.txt requirements-lock.txt constraints/*.txt pyproject.toml setup.py \
  | sha256sum | cut -c1-16)
stamp="$VENV/.pmp-setup-$stamp_src"
if [[ -f "$stamp" ]]; then
  log "python environment up to date ($VENV)"
else
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv $VENV (Python $want: $PY)"
    "$PY" -m venv "$VENV"
  fi
  # The platform's own pins (Airflow 3.3.1 constraints + MWAA's essential ones) and the lock made
  # from them (scripts/lock.sh): the set MWAA and Astro Runtime install, plus the dev tools.
  log "installing pinned dependencies (constraints/, requirements-lock.txt)"
  pins=(-c constraints/airflow-3.3.1-py3.12.txt -c constraints/mwaa-essential-3.3.1.txt -c requirements-lock.txt)
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "${pins[@]}" "apache-airflow==3.3.1" -r requirements.txt -r requirements-dev.txt
  # the build backend is the constraints' setuptools, already installed (no isolated build env to fetch)
  "$VENV/bin/pip" install -q "${pins[@]}" --no-deps --no-build-isolation -e .
  rm -f "$VENV"/.pmp-setup-*
  touch "$stamp"
  log "python environment ready"
fi

# The Rust bulk processor: one abi3 wheel for manylinux_2_28 (glibc >= 2.28; MWAA 3.3.1 runs
# Amazon Linux 2023, glibc 2.34), linked by zig (maturin --zig, ziglang from requirements-dev.txt)
# so the build machine's newer glibc does not leak into it. The venv runs that very wheel, and
# scripts/package.sh ships it: the tests exercise the artifact the platforms install.
PMP_HOME="${PMP_HOME:-$REPO/.pmp}"
MANYLINUX=manylinux_2_28
rust_src=$( (echo "$MANYLINUX"; cd rust_operators && cat Cargo.toml Cargo.lock pyproject.toml .cargo/config.toml $(find src -type f | sort)) \
  | sha256sum | cut -c1-16)
rust_stamp="$VENV/.pmp-bulk-$rust_src"
if [[ -f "$rust_stamp" ]] && ls "$PMP_HOME"/wheels/pmp_bulk-*-"$MANYLINUX"_x86_64.whl >/dev/null 2>&1 \
    && "$VENV/bin/python" -c "import pmp_bulk" 2>/dev/null; then
  log "rust bulk processor up to date"
else
  command -v cargo >/dev/null || { echo "[setup] cargo (Rust toolchain) is required to build rust_operators/" >&2; exit 1; }
  log "building the Rust bulk processor (maturin --release --zig, $MANYLINUX; first build takes a few minutes)"
  t0=$SECONDS
  rm -rf "$PMP_HOME/wheels" && mkdir -p "$PMP_HOME/wheels"
  PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" build --release --locked -q --zig --compatibility "$MANYLINUX" \
    -m rust_operators/Cargo.toml -o "$PMP_HOME/wheels" >"$PMP_HOME/wheels/build.log" 2>&1 \
    || { tail -30 "$PMP_HOME/wheels/build.log"; exit 1; }
  "$VENV/bin/pip" install -q --force-reinstall --no-deps "$PMP_HOME"/wheels/pmp_bulk-*.whl
  rm -f "$VENV"/.pmp-bulk-*
  touch "$rust_stamp"
  log "rust bulk processor built and installed in $((SECONDS - t0))s"
fi
