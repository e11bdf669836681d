#!/usr/bin/env bash
# The whole test suite, with all its own set-up: venv, local services, lint, unit and integration tests.
# Services this script starts are stopped again when it exits; ones already running are left alone.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

# PostgreSQL + TimescaleDB (apt, then a source build on a fresh machine) installs in the
# background while set-up builds the Python environment and the Rust wheel.
mkdir -p .pmp/logs
# Chromium (Debian's chromium, chromium-driver) for the browser test comes the same way.
(scripts/services.sh install postgres && scripts/services.sh install browser) >.pmp/logs/services-install.log 2>&1 &
pg_install=$!

# Set-up: it builds the Rust bulk processor wheel (release, linked by zig for manylinux_2_28).
# `cargo test` then builds the crate once more for the host toolchain (pyo3 without
# `extension-module`, so the test binary links libpython): a second compile of the dependencies.
scripts/setup.sh
wait "$pg_install" || { cat .pmp/logs/services-install.log; exit 1; }
cat .pmp/logs/services-install.log

echo "[test] cargo test + clippy (rust_operators)"
(
  cd rust_operators
  mkdir -p ../.pmp/logs
  features=()
  if ../.venv/bin/python -c 'import sys, sysconfig; sys.exit(0 if sysconfig.get_config_var("Py_ENABLE_SHARED") else 1)'; then
    features=(--features python)  # a static-only Python cannot link the test binary against libpython
  fi
  PYO3_PYTHON="$REPO/.venv/bin/python" cargo test --release --locked "${features[@]}" >../.pmp/logs/cargo-test.log 2>&1 \
    || { tail -40 ../.pmp/logs/cargo-test.log; exit 1; }
  grep -E "^test result" ../.pmp/logs/cargo-test.log
  cargo clippy --release --locked --all-targets --features python -q -- -D warnings
)

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
# Tests wait on HTTP, the database and S3 much of the time: three workers on two cores (each with its
# own Airflow home, warehouse database and S3 prefix; see tests/conftest.py). PMP_TEST_WORKERS=0 runs serially.
# --dist loadgroup: the tests that start a real local Airflow (xdist_group "live-airflow") share one
# worker, so two of them never compete for the two cores; so do modules sharing one loaded warehouse.
.venv/bin/python -m pytest -q -p no:cacheprovider -n "${PMP_TEST_WORKERS:-3}" --dist loadgroup "$@"
