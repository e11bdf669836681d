#!/usr/bin/env bash
# Every deployable artifact from one command (README "Deploy"). Idempotent; a re-run rebuilds only
# what changed. Needs only the registries this machine reaches, and those only the first time
# (scripts/setup.sh installs the build tools: setuptools, maturin, ziglang, auditwheel).
#
#   dist/wheels/power_market_pipeline-<v>-py3-none-any.whl   the pmp package: hooks, normalizers, loader,
#       DAG factory, CLI; sql/ and airflow_settings.yaml inside as package data (setup.py)
#   dist/wheels/pmp_bulk-<v>-cp311-abi3-manylinux_2_28_x86_64.whl   the Rust bulk processor, built
#       with maturin --zig against glibc 2.28 (MWAA 3.3.1 runs Amazon Linux 2023, glibc 2.34) and
#       checked with auditwheel (dist/wheels/pmp_bulk.auditwheel.txt)
#   dist/mwaa/   what an MWAA 3.3.1 environment takes from S3:
#       dags/             the DAG files                       -> the environment's DAGs folder
#       plugins.zip       both wheels + the constraints file  -> "Plugins file"
#       requirements.txt  --constraint, --find-links /usr/local/airflow/plugins, the package names
#                                                              -> "Requirements file"
#       startup.sh        the PMP_* settings, documented       -> "Startup script"
#   dist/astro/airflow_settings.yaml   local connections pointed at the docker-compose.override.yml
#       services, for `astro dev start --settings-file dist/astro/airflow_settings.yaml`; the Astro
#       build context is the repository root (Dockerfile, .dockerignore) with dist/wheels.
#
# Options: --wheelhouse  also fill .pmp/wheelhouse/ with every wheel the MWAA requirements need for
#                        CPython 3.12 on manylinux x86_64 (pip download against the index, cached
#                        by the pins' hash), then resolve them with pip install --dry-run
#                        --platform … from those wheels; tests/test_packaging.py installs from it.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PMP_HOME="${PMP_HOME:-$REPO/.pmp}"
DIST="${PMP_DIST:-$REPO/dist}"
WHEELHOUSE=0
for arg in "$@"; do
  case "$arg" in
    --wheelhouse) WHEELHOUSE=1 ;;
    *) echo "usage: scripts/package.sh [--wheelhouse]" >&2; exit 2 ;;
  esac
done
log() { echo "[package] $*"; }
die() { echo "[package] ERROR: $*" >&2; exit 1; }
# One run at a time per checkout (the in-tree wheel build and dist/ are shared).
mkdir -p "$PMP_HOME"
exec 9>"$PMP_HOME/package.lock"
flock 9

scripts/setup.sh | sed 's/^/  /'
PY="$REPO/.venv/bin/python"
VERSION="$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
BULK_VERSION="$("$PY" -c 'import tomllib; print(tomllib.load(open("rust_operators/pyproject.toml", "rb"))["project"]["version"])')"
CONSTRAINTS=constraints/airflow-3.3.1-py3.12.txt
ESSENTIAL=constraints/mwaa-essential-3.3.1.txt
# MWAA's manylinux floor for this build (AL2023 has glibc 2.34; 2.28 leaves headroom).
MANYLINUX=manylinux_2_28
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform linux_x86_64)
mkdir -p "$DIST/wheels" "$PMP_HOME/logs"
t0=$SECONDS

# ---------------------------------------------------------------- the pmp wheel
# A clean build directory each time: setuptools never deletes a module that was removed from the
# source, so a reused build/ would ship it.
rm -rf "$REPO/build" "$DIST"/wheels/power_market_pipeline-*.whl
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$DIST/wheels" . >"$PMP_HOME/logs/package-pmp.log" 2>&1 \
  || { tail -30 "$PMP_HOME/logs/package-pmp.log"; die "pmp wheel build failed"; }
rm -rf "$REPO/build"
PMP_WHEEL="$(ls "$DIST"/wheels/power_market_pipeline-"$VERSION"-py3-none-any.whl)"
"$PY" - "$PMP_WHEEL" <<'EOF'
import pathlib, sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
want = {f"pmp/_data/sql/{p.name}" for p in pathlib.Path("sql").glob("*.sql")} | {"pmp/_data/airflow_settings.yaml"}
missing = sorted(want - names)
sys.exit(f"{sys.argv[1]}: package data missing: {missing}" if missing else 0)
EOF
log "pmp wheel: $(basename "$PMP_WHEEL")"

# ---------------------------------------------------------------- the pmp_bulk wheel (manylinux)
# scripts/setup.sh builds it (maturin --zig for $MANYLINUX; cached by the Rust sources) and the
# venv runs it: the one the tests exercise is the one that ships.
rm -f "$DIST"/wheels/pmp_bulk-*.whl
cp "$PMP_HOME"/wheels/pmp_bulk-"$BULK_VERSION"-cp311-abi3-"$MANYLINUX"_x86_64.whl "$DIST/wheels/"
BULK_WHEEL="$(ls "$DIST"/wheels/pmp_bulk-"$BULK_VERSION"-cp311-abi3-"$MANYLINUX"_x86_64*.whl)"
"$REPO/.venv/bin/auditwheel" show "$BULK_WHEEL" >"$DIST/wheels/pmp_bulk.auditwheel.txt" 2>&1 \
  || { cat "$DIST/wheels/pmp_bulk.auditwheel.txt"; die "auditwheel show failed"; }
# The wheel must need nothing newer than its tag says (auditwheel names the oldest policy it fits).
"$PY" - "$DIST/wheels/pmp_bulk.auditwheel.txt" "$MANYLINUX" <<'EOF'
import re, sys
text, floor = open(sys.argv[1]).read(), sys.argv[2]
m = re.search(r'consistent with the following platform tag:\s*"(manylinux_(\d+)_(\d+)_x86_64)"', text.replace("\n", " "))
want = tuple(int(x) for x in floor.split("_")[1:])
if not m or (int(m.group(2)), int(m.group(3))) > want:
    sys.exit(f"auditwheel: the wheel is not {floor} or older:\n{text}")
EOF
log "pmp_bulk wheel: $(basename "$BULK_WHEEL") ($(grep -o 'platform tag: *"[^"]*"' "$DIST/wheels/pmp_bulk.auditwheel.txt" | tr -s ' '))"

# ---------------------------------------------------------------- dist/mwaa
MWAA="$DIST/mwaa"
rm -rf "$MWAA" && mkdir -p "$MWAA/dags"
cp dags/*.py "$MWAA/dags/"
[[ -f dags/.airflowignore ]] && cp dags/.airflowignore "$MWAA/dags/"
CONSTRAINTS_NAME="$(basename "$CONSTRAINTS")"
# plugins.zip: MWAA unpacks it into /usr/local/airflow/plugins; files at its root, no directories.
"$PY" - "$MWAA/plugins.zip" "$PMP_WHEEL" "$BULK_WHEEL" "$CONSTRAINTS" <<'EOF'
import os, sys, zipfile
out, *files = sys.argv[1:]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for f in files:
        info = zipfile.ZipInfo(os.path.basename(f), date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(f, "rb") as fh:
            z.writestr(info, fh.read())
EOF
{
  echo "# MWAA 3.3.1 requirements of the Power Market Pipeline (made by scripts/package.sh; upload as the"
  echo "# environment's requirements file together with plugins.zip)."
  echo "# The constraints are Airflow 3.3.1's own file for Python 3.12, byte for byte the one at"
  echo "# https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt, shipped in"
  echo "# plugins.zip so that environments without internet access resolve the same versions."
  echo "--constraint \"/usr/local/airflow/plugins/$CONSTRAINTS_NAME\""
  echo "# the two wheels of this project, from plugins.zip"
  echo "--find-links /usr/local/airflow/plugins"
  echo "power-market-pipeline==$VERSION"
  echo "pmp-bulk==$BULK_VERSION"
  echo "# what the bundle adds to Airflow (the repository's requirements.txt; versions from the constraints)"
  sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' requirements.txt
} >"$MWAA/requirements.txt"

# startup.sh: MWAA runs it (from S3, "Startup script") before every Airflow component starts;
# the variables it exports reach the scheduler, dag-processor, triggerer, workers and API server.
cat >"$MWAA/startup.sh" <<'EOF'
#!/bin/sh
# MWAA startup script of the Power Market Pipeline (made by scripts/package.sh). MWAA runs it before
# each Airflow component starts; every variable exported here reaches the DAGs and tasks. Edit the
# values marked CHANGE, upload, and select it as the environment's startup script.
#
# Connections are NOT set here: define them in Secrets Manager (or the Airflow UI) with the ids
# below; credentials never go in this file.

# Where raw files and normalized Parquet are staged (s3://bucket/prefix/). CHANGE: your bucket; the
# execution role needs s3:GetObject, s3:PutObject and s3:ListBucket on it.
export PMP_STAGING_URL="${PMP_STAGING_URL:-s3://CHANGE-ME-pmp-staging/pmp/}"
# Airflow connection ids: the warehouse (postgres type: TimescaleDB; extras sslmode, iam...) and the
# staging store (aws type). Without a pmp_s3 connection the execution role's credentials are used.
export PMP_DB_CONN_ID="${PMP_DB_CONN_ID:-tsdb}"
export PMP_S3_CONN_ID="${PMP_S3_CONN_ID:-pmp_s3}"
# History DAGs catch up from each dataset's first day (2019-01-01) when unpaused: true, or load
# history only with `airflow backfill create`: false.
export PMP_CATCHUP="${PMP_CATCHUP:-true}"
# Which DAGs this environment builds: comma-separated glob patterns of DAG ids; empty = all.
# Example: PMP_DAGS="ercot_*,caiso_lmp_*"
export PMP_DAGS="${PMP_DAGS:-}"
# Normalizer of the bulk history archives: rust (pmp_bulk wheel) or python (the reference).
export PMP_BULK_ENGINE="${PMP_BULK_ENGINE:-rust}"
# Deadline alerts of every DAG (true/false) and where a missed deadline is POSTed as JSON
# (optional; a pmp_alerts connection's host works too).
export PMP_DEADLINES="${PMP_DEADLINES:-true}"
export PMP_ALERT_WEBHOOK_URL="${PMP_ALERT_WEBHOOK_URL:-}"
# The Parquet lake the daily DAGs write after their checks (true/false) and where it lives
# (default <PMP_STAGING_URL>/lake/; s3:// or file://): read it with DuckDB, pandas or polars.
export PMP_LAKE="${PMP_LAKE:-true}"
export PMP_LAKE_URL="${PMP_LAKE_URL:-}"
# Deadline tuning (minutes): grace after a market day's expected publication, how long a daily,
# a monthly history and a real-time run may take once queued.
export PMP_DEADLINE_GRACE_MINUTES="${PMP_DEADLINE_GRACE_MINUTES:-}"
export PMP_DAILY_RUN_MINUTES="${PMP_DAILY_RUN_MINUTES:-}"
export PMP_HISTORY_RUN_MINUTES="${PMP_HISTORY_RUN_MINUTES:-}"
export PMP_REALTIME_DEADLINE_MINUTES="${PMP_REALTIME_DEADLINE_MINUTES:-}"
# The warehouse as the Assets' URIs name it (postgres://host:port/database; the load tasks' outlets).
export PMP_ASSET_WAREHOUSE="${PMP_ASSET_WAREHOUSE:-}"
# Event-driven real time (pmp.triggers): a watched real-time run's task starts in the triggerer,
# polls the ISO's listing every PMP_WATCH_POLL_SECONDS (within the connection's pacing) and loads
# when a new document is listed, or after PMP_REALTIME_WAIT_MINUTES (below the deadline) without
# one. PMP_WATCH=false: every real-time task runs at its */5 tick.
export PMP_WATCH="${PMP_WATCH:-true}"
export PMP_REALTIME_WAIT_MINUTES="${PMP_REALTIME_WAIT_MINUTES:-}"
export PMP_WATCH_POLL_SECONDS="${PMP_WATCH_POLL_SECONDS:-}"
# Warm task processes (pmp.plugin.preload): the scheduler and the workers import the bundle's
# modules with its plugin, so the task processes they fork start without importing them.
export PMP_PRELOAD="${PMP_PRELOAD:-true}"
# CPU niceness a history task process takes before it runs (pmp.factory.history_cpu_priority):
# real-time tasks on the same worker get the CPU first. 0 leaves it unchanged.
export PMP_HISTORY_NICE="${PMP_HISTORY_NICE:-10}"
# Task retries of the generated DAGs.
export PMP_TASK_RETRIES="${PMP_TASK_RETRIES:-3}"
# Local state of the pmp package (only used with a file:// staging URL).
export PMP_HOME="${PMP_HOME:-/usr/local/airflow/pmp}"
# Not for MWAA, listed so that every setting is in one place: PMP_PG_DSN (a libpq string used when
# the PMP_DB_CONN_ID connection does not exist) and PMP_S3_ENDPOINT (an S3-compatible endpoint used
# when the PMP_S3_CONN_ID connection does not exist).
EOF
chmod +x "$MWAA/startup.sh"
log "dist/mwaa: dags/ ($(ls "$MWAA"/dags/*.py | wc -l) files), plugins.zip, requirements.txt, startup.sh"

# ---------------------------------------------------------------- dist/astro
mkdir -p "$DIST/astro"
"$PY" - "$DIST/astro/airflow_settings.yaml" <<'EOF'
import sys
import yaml
from pmp.airflow_settings import for_astro
with open(sys.argv[1], "w") as fh:
    fh.write("# airflow_settings.yaml for `astro dev start --settings-file dist/astro/airflow_settings.yaml`:\n"
             "# the repository's file with loopback hosts replaced by the docker-compose.override.yml services\n"
             "# (made by scripts/package.sh from pmp.airflow_settings.for_astro).\n")
    yaml.safe_dump(for_astro(), fh, sort_keys=False)
EOF
log "dist/astro/airflow_settings.yaml (astro dev connections); Astro build context: Dockerfile + dist/wheels"

# ---------------------------------------------------------------- the MWAA wheelhouse (tests)
if [[ $WHEELHOUSE == 1 ]]; then
  pins=$(cat "$CONSTRAINTS" "$ESSENTIAL" "$MWAA/requirements.txt" | sha256sum | cut -c1-16)
  house="$PMP_HOME/wheelhouse/$pins"
  if [[ -f "$house/.complete" ]]; then
    log "wheelhouse up to date ($house)"
  else
    rm -rf "$PMP_HOME/wheelhouse" && mkdir -p "$house"
    req="$house/requirements.txt"
    sed "s#/usr/local/airflow/plugins#$DIST/wheels#; s#$DIST/wheels/$CONSTRAINTS_NAME#$REPO/$CONSTRAINTS#" \
      "$MWAA/requirements.txt" >"$req"
    t1=$SECONDS
    # pip download resolves them against the index exactly as pip install would for that platform
    log "resolving the MWAA requirements for CPython 3.12 manylinux x86_64 and downloading their wheels"
    "$PY" -m pip download -q --python-version 3.12 "${PLATFORMS[@]}" --only-binary=:all: -d "$house" \
      -r "$req" apache-airflow==3.3.1 -c "$CONSTRAINTS" -c "$ESSENTIAL" >"$house/download.log" 2>&1 \
      || { tail -30 "$house/download.log"; die "the MWAA requirements do not resolve (pip download)"; }
    # and the dry-run install the issue gives, now from those wheels alone
    "$PY" -m pip install --dry-run --ignore-installed --python-version 3.12 "${PLATFORMS[@]}" --only-binary=:all: \
      --target "$house/dry-run-target" --no-index --find-links "$house" -r "$req" apache-airflow==3.3.1 \
      -c "$CONSTRAINTS" -c "$ESSENTIAL" >"$house/dry-run.log" 2>&1 \
      || { tail -30 "$house/dry-run.log"; die "the MWAA requirements do not resolve (pip install --dry-run)"; }
    log "$(grep -c . <(grep '^Would install' "$house/dry-run.log" | tr ' ' '\n' | tail -n +3)) packages would install"
    rm -f "$house"/power_market_pipeline-*.whl "$house"/pmp_bulk-*.whl  # those come from plugins.zip
    touch "$house/.complete"
    log "wheelhouse: $(ls "$house"/*.whl | wc -l) wheels, $(du -sh "$house" | cut -f1), $((SECONDS - t1))s"
  fi
fi

sizes() { for f in "$@"; do printf '  %-64s %s\n' "${f#"$REPO"/}" "$(du -h "$f" | cut -f1)"; done; }
log "artifacts ($((SECONDS - t0))s):"
sizes "$PMP_WHEEL" "$BULK_WHEEL" "$MWAA/plugins.zip" "$MWAA/requirements.txt" "$MWAA/startup.sh"
