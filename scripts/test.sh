#!/usr/bin/env bash
# The whole test suite, with all its own set-up: venv, local services, lint, unit and integration tests.
# Services this script starts are stopped again when it exits; ones already running are left alone.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

# Rust first: `cargo test` compiles the dependencies the wheel build (in setup.sh) then reuses.
echo "[test] cargo test + clippy (rust_operators)"
(
  cd rust_operators
  mkdir -p ../.pmp/logs
  cargo test --release --locked >../.pmp/logs/cargo-test.log 2>&1 || { tail -40 ../.pmp/logs/cargo-test.log; exit 1; }
  grep -E "^test result" ../.pmp/logs/cargo-test.log
  cargo clippy --release --locked --all-targets --features python -q -- -D warnings
)

scripts/setup.sh

started=()
cleanup() {
  for svc in "${started[@]}"; do scripts/services.sh stop "$svc" || true; done
}
trap cleanup EXIT
for svc in postgres s3; do
  if ! scripts/services.sh status "$svc" | grep -q running; then
    started+=("$svc")
  fi
done
scripts/services.sh start

echo "[test] ruff"
.venv/bin/ruff check .
echo "[test] pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
