"""Bad input at every entry point (issue 21): one clear line, exit status 2, nothing written.

``CASES`` is the table: the ``pmp`` command line (download, normalize, catalog, query, plot, lake,
the commands themselves), ``PMP_*`` settings and ISO connection extras, each run against a real
warehouse (a database of the test's own, migrated), a file staging area of its own and a running
ISO simulator. Every case asserts the exit status, that stderr is the one error line (no
traceback) and holds the expected sentence, that no password or key of the input is echoed, and
that nothing was written: no raw object, no warehouse row, no ``ingest_log`` row, and for bad
settings and connections no request reached the simulator (the checks come before any fetch).

DAG parsing (one import error per file), ``PMP_DAGS`` selections, run ``conf`` keys and
``pmp check-config`` have tests of their own below.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, samples_dir

from pmp import registry, validate
from pmp.cli import main

ISOS = ", ".join(registry.isos())  # caiso, ercot, isone, miso, nyiso, pjm

SECRET = "s3cr3t-Zq9"  # put into inputs that carry credentials: it must never come back
NOW = datetime(2024, 11, 6, 18, tzinfo=UTC)
DL = ["download", "--iso", "ercot", "--dataset", "lmp_dam", "--start", "2024-11-03", "--end", "2024-11-04", "--quiet"]
ERCOT_SAMPLE = str(next(samples_dir("ercot").glob("rt_spp_15min_np6-905-cd*")))


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]
    message: str  # a regular expression the error line must match (re.search)
    env: dict[str, str] = field(default_factory=dict)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # conn_id -> extra keys to set
    raw_extra: dict[str, str] = field(default_factory=dict)  # conn_id -> the extra as (bad) text
    exit: int = 2
    fetches: bool = False  # the case may reach the simulator before it fails (a normalizer error)


def _out(name: str = "x.parquet") -> str:
    return f"{{tmp}}/{name}"


CASES = [
    # -- pmp download: names, dates, ranges -----------------------------------------------------
    Case("download-unknown-iso", ["download", "--iso", "ercto", *DL[3:]],
         rf"pmp download: error: unknown ISO 'ercto'; known: {ISOS}; did you mean 'ercot'\?$"),
    Case("download-unknown-dataset", [*DL[:3], "--dataset", "lmp_dm", *DL[5:]],
         r"unknown dataset 'lmp_dm' for ISO 'ercot'; known: as_dam, .*; did you mean 'lmp_dam'\?$"),
    Case("download-reversed-range", [*DL[:5], "--start", "2024-11-05", "--end", "2024-11-03", "--quiet"],
         r"--end 2024-11-03 must be after --start 2024-11-05 \(--end is exclusive\): the range holds no market day"),
    Case("download-empty-range", [*DL[:5], "--start", "2024-11-03", "--end", "2024-11-03"],
         r"--end 2024-11-03 must be after --start 2024-11-03"),
    Case("download-not-a-date", [*DL[:5], "--start", "2024-13-01", "--end", "2024-11-03"],
         r"pmp download: error: argument --start: '2024-13-01' is not a date \(YYYY-MM-DD\); see pmp download --help"),
    Case("download-missing-end", DL[:7], r"pmp download: error: the following arguments are required: --end"),
    Case("download-before-first-day", [*DL[:5], "--start", "2010-01-01", "--end", "2010-01-05"],
         r"is before ercot.lmp_dam first market day 20\d\d-\d\d-\d\d: there is no data to load"),
    Case("download-future", [*DL[:5], "--start", "2099-01-01", "--end", "2099-01-02"],
         r"--start 2099-01-01 is after today \(.* for ercot.lmp_dam\): the ISO has not published it"),
    Case("unknown-command", ["donwload"], r"pmp: error: argument command: invalid choice: 'donwload' .*"
         r"did you mean 'download'\? see pmp --help$"),
    Case("unknown-choice", ["db", "migrat"], r"invalid choice: 'migrat' .*did you mean 'migrate'\?"),
    # -- PMP_* settings: checked before anything is fetched -------------------------------------
    Case("setting-retries", DL, r"PMP_TASK_RETRIES='abc': expected a whole number >= 0 \(unset: 3\)",
         env={"PMP_TASK_RETRIES": "abc"}),
    Case("setting-staging-scheme", DL, r"PMP_STAGING_URL='ftp://files.example/raw/': expected file:///absolute/path/ "
         r"or s3://bucket/prefix/", env={"PMP_STAGING_URL": "ftp://files.example/raw/"}),
    Case("setting-staging-credentials", DL, r"PMP_STAGING_URL='s3://pmp-raw/': .*credentials and query strings do "
         r"not belong in it", env={"PMP_STAGING_URL": f"s3://AKIA:{SECRET}@pmp-raw/"}),
    Case("setting-staging-placeholder", DL, r"'CHANGE-ME-pmp-staging' is not an S3 bucket name .*set your bucket",
         env={"PMP_STAGING_URL": "s3://CHANGE-ME-pmp-staging/pmp/"}),
    Case("setting-bulk-engine", DL, r"PMP_BULK_ENGINE='rusty': expected one of rust, python \(unset: rust\); "
         r"did you mean 'rust'\?", env={"PMP_BULK_ENGINE": "rusty"}),
    Case("setting-catchup", DL, r"PMP_CATCHUP='maybe': expected true or false", env={"PMP_CATCHUP": "maybe"}),
    Case("setting-minutes", DL, r"PMP_DEADLINE_GRACE_MINUTES='-5': expected whole minutes > 0 \(unset: 180\)",
         env={"PMP_DEADLINE_GRACE_MINUTES": "-5"}),
    Case("setting-dsn-secret", DL, r"PMP_PG_DSN=\(value not shown: it may hold a password\): expected a libpq",
         env={"PMP_PG_DSN": f"host=127.0.0.1 password={SECRET} dbname='unterminated"}),
    Case("setting-webhook-token", DL, r"PMP_ALERT_WEBHOOK_URL='ftp://hooks.example/…': expected http://",
         env={"PMP_ALERT_WEBHOOK_URL": f"ftp://hooks.example/services/{SECRET}"}),
    Case("setting-conn-id", DL, r"PMP_DB_CONN_ID='tsdb warehouse': expected an Airflow connection id",
         env={"PMP_DB_CONN_ID": "tsdb warehouse"}),
    Case("setting-s3-endpoint-port", DL, r"PMP_S3_ENDPOINT='http://127.0.0.1:s3': expected http://host\[:port\]",
         env={"PMP_S3_ENDPOINT": "http://127.0.0.1:s3"}),
    # -- connection extras: malformed JSON, unknown keys, wrong types, choices, bounds ----------
    Case("extra-unknown-key", DL, r"unknown extra 'mis_requests_per_minut' in connection 'ercot_default'; known: .*"
         r"did you mean 'mis_requests_per_minute'\?", extra={"ercot_default": {"mis_requests_per_minut": 5}}),
    Case("extra-wrong-type", DL, r"connection 'ercot_default': extra.retry_backoff_seconds must be a number "
         r"\(float\), not 'soon'", extra={"ercot_default": {"retry_backoff_seconds": "soon"}}),
    Case("extra-malformed-json", DL, r"connection 'ercot_default': extra is not valid JSON \(.* at line 1 column \d+\)",
         raw_extra={"ercot_default": '{"subscription_key": "' + SECRET + '",'}),
    Case("extra-not-an-object", DL, r"connection 'ercot_default': extra must be a JSON object, not list",
         raw_extra={"ercot_default": "[1, 2]"}),
    Case("extra-secret-wrong-type", DL, r"extra.subscription_key must be a text \(str\), not \(value not shown: "
         r"it is a secret\)", extra={"ercot_default": {"subscription_key": {"key": SECRET}}}),
    Case("extra-url", DL, r"extra.mis_base_url must be a URL http://host\[:port\]/… or https://host\[:port\]/…, "
         r"not 'ftp://127.0.0.1:58080/misapp'", extra={"ercot_default": {"mis_base_url": "ftp://127.0.0.1:58080/misapp"}}),
    Case("extra-choice", ["download", "--iso", "isone", "--dataset", "lmp_dam", *DL[5:]],
         r"connection 'isone_default': extra.source must be one of csv, webservices, not 'webservice'; "
         r"did you mean 'webservices'\?", extra={"isone_default": {"source": "webservice"}}),
    Case("extra-bounds", ["download", "--iso", "pjm", "--dataset", "lmp_dam", *DL[5:]],
         r"connection 'pjm_default': extra.row_count must be within 1 .. 50000, not 0",
         extra={"pjm_default": {"row_count": 0}}),
    Case("extra-caiso-route", ["download", "--iso", "caiso", "--dataset", "lmp_dam", *DL[5:]],
         r"extra.dam_lmp_route must be one of auto, singlezip, groupzip, not 'group'",
         extra={"caiso_default": {"dam_lmp_route": "group"}}),
    # -- pmp normalize ----------------------------------------------------------------------------
    Case("normalize-unknown-iso", ["normalize", "--iso", "ercto", "--dataset", "lmp_rt15m", ERCOT_SAMPLE,
                                   "--out", _out()], r"unknown ISO 'ercto'.*did you mean 'ercot'\?"),
    Case("normalize-missing-file", ["normalize", "--iso", "ercot", "--dataset", "lmp_rt15m", "{tmp}/nope.csv",
                                    "--out", _out()], r"pmp normalize: error: .*/nope.csv: no such file$"),
    Case("normalize-out-directory", ["normalize", "--iso", "ercot", "--dataset", "lmp_rt15m", ERCOT_SAMPLE,
                                     "--out", "{tmp}/no/such/dir/x.parquet"], r"--out .*x.parquet: directory .*/no/such/dir "
                                     r"does not exist"),
    Case("normalize-bad-field", ["normalize", "--iso", "ercot", "--dataset", "lmp_dam", "{tmp}/bad.csv", "--out", _out()],
         r"bad.csv, line 3, field 'SettlementPointPrice': not a number: 'abc'"),
    # -- pmp catalog ------------------------------------------------------------------------------
    Case("catalog-unknown-iso", ["catalog", "--iso", "nonexist"],
         rf"pmp catalog: error: unknown ISO 'nonexist'; known: {ISOS}$"),
    Case("catalog-unknown-dataset", ["catalog", "--iso", "nyiso", "--dataset", "lmp_dma"],
         r"unknown dataset 'lmp_dma' for ISO 'nyiso'; known: .*did you mean 'lmp_dam'\?"),
    Case("catalog-dates-without-days", ["catalog", "--iso", "ercot", "--start", "2024-11-01"],
         r"--start/--end choose the market days shown by --days: add --days"),
    Case("catalog-reversed", ["catalog", "--days", "--start", "2024-11-05", "--end", "2024-11-01"],
         r"--end 2024-11-01 must be after --start 2024-11-05"),
    # -- the read CLI: pmp query / plot / lake --------------------------------------------------
    Case("query-unknown-iso", ["query", "lmp", "--iso", "ercto", "--start", "2024-11-03"],
         r"pmp query: error: unknown ISO 'ercto'.*did you mean 'ercot'\?"),
    Case("query-reversed", ["query", "lmp", "--iso", "ercot", "--start", "2024-11-05", "--end", "2024-11-03"],
         r"end 2024-11-03T05:00:00\+00:00 is not after start 2024-11-05T06:00:00\+00:00 \(end is exclusive\)"),
    Case("query-not-a-time", ["query", "lmp", "--iso", "ercot", "--start", "yesterday"],
         r"start: not a time: 'yesterday' \(use YYYY-MM-DD"),
    Case("query-option-does-not-apply", ["query", "load", "--iso", "ercot", "--locations", "HB_NORTH"],
         r"--locations does not apply to 'pmp query load' \(its options: --areas\)"),
    Case("query-parquet-needs-out", ["query", "lmp", "--iso", "ercot", "--format", "parquet"],
         r"--format parquet needs --out FILE"),
    Case("query-unknown-market", ["query", "lmp", "--iso", "ercot", "--market", "DAH"], r"unknown market 'DAH'"),
    Case("plot-no-location", ["plot", "price-heatmap", "--iso", "ercot", "--start", "2024-11-03", "--end", "2024-11-04",
                              "--out", _out("x.png")], r"price-heatmap needs --location"),
    Case("lake-reversed", ["lake", "compact", "--iso", "ercot", "--start", "2024-11-05", "--end", "2024-11-03"],
         r"pmp lake: error: --end 2024-11-03 must be after --start 2024-11-05"),
    Case("lake-unknown-dataset", ["lake", "compact", "--iso", "ercot", "--dataset", "lmp", "--start", "2024-11-03",
                                  "--end", "2024-11-04"], r"unknown dataset 'lmp' for ISO 'ercot'"),
    Case("lake-url", ["lake", "compact", "--iso", "ercot", "--start", "2024-11-03", "--end", "2024-11-04",
                      "--lake-url", f"ftp://u:{SECRET}@lake.example/x"],
         r"--lake-url 'ftp://lake.example/x': expected file:///absolute/path/ or s3://bucket/prefix/"),
]


def _warehouse_rows(dsn: str) -> dict[str, int]:
    """Rows of ingest_log and of every warehouse table."""
    import psycopg

    from pmp.schema import TABLES

    with psycopg.connect(dsn) as conn:
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in ["ingest_log", *TABLES]}


def _files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


@pytest.fixture(scope="module")
def migrated(services: dict) -> Any:
    """A warehouse of this module's own, migrated, its ``tsdb`` connection JSON and DSN."""
    import uuid

    import psycopg
    from psycopg.conninfo import make_conninfo

    from pmp import airflow_settings, db

    PG = airflow_settings.connections()["tsdb"]
    name = f"pmp_test_badinput_{uuid.uuid4().hex[:8]}"
    admin = dict(host=PG["host"], port=PG["port"], user=PG["login"], password=PG["password"])
    with psycopg.connect(**admin, dbname=PG["schema"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(**admin, dbname=name)
    with psycopg.connect(dsn) as conn:
        db.migrate(conn)
    yield json.dumps(dict(PG, schema=name)), dsn
    with psycopg.connect(**admin, dbname=PG["schema"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def world(migrated: Any, use_simulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    conn_json, dsn = migrated
    monkeypatch.setenv("AIRFLOW_CONN_TSDB", conn_json)
    for name in list(os.environ):  # only what a case sets
        if name.startswith("PMP_") and name in validate.SETTINGS:
            monkeypatch.delenv(name)
    staging = tmp_path / "staging"
    monkeypatch.setenv("PMP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PMP_STAGING_URL", staging.as_uri() + "/")
    sim = use_simulator(now=NOW)
    (tmp_path / "bad.csv").write_text("DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag\n"
                                      "09/29/2026,01:00,HB_NORTH, 28.4,N\n09/29/2026,01:00,HB_WEST, abc,N\n")
    return {"dsn": dsn, "staging": staging, "sim": sim, "tmp": tmp_path}


@pytest.mark.integration
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(case: Case, world: dict[str, Any], capsys: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from live import sim_conn

    for conn_id, extra in case.extra.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(sim_conn(conn_id, world["sim"].url, **extra)))
    for conn_id, text in case.raw_extra.items():
        conn = sim_conn(conn_id, world["sim"].url)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({**conn, "extra": text}))
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    before = _warehouse_rows(world["dsn"])
    capsys.readouterr()
    argv = [a.replace("{tmp}", str(world["tmp"])) for a in case.argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == case.exit, err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("pmp"), errors[0]
    assert re.search(case.message, errors[0]), errors[0]
    assert SECRET not in out + err
    # nothing written: no raw or normalized object, no warehouse row, no ingest_log row, no output file
    assert _files(world["staging"]) == []
    assert _warehouse_rows(world["dsn"]) == before
    assert not list(world["tmp"].glob("*.parquet")) and not list(world["tmp"].glob("*.png"))
    if case.env or case.extra or case.raw_extra:
        assert world["sim"].requests == [], "a bad setting or connection is found before anything is fetched"


def test_the_table_covers_every_entry_point() -> None:
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    commands = {c.argv[0] for c in CASES}
    assert commands >= {"download", "normalize", "catalog", "query", "plot", "lake", "db"}
    assert {c.id.split("-")[0] for c in CASES} >= {"setting", "extra"}


def test_a_cli_error_is_one_line_and_v_shows_the_traceback(tmp_path: Path) -> None:
    """As a user runs it: a process, exit 2, exactly one line on stderr; ``-v`` adds the traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMP_")} | {"PMP_HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "pmp.cli", "catalog", "--iso", "ercto"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [f"pmp catalog: error: unknown ISO 'ercto'; known: {ISOS}; did you mean 'ercot'?"]
    verbose = subprocess.run([*cmd, "-v"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert verbose.returncode == 2 and "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.rstrip().splitlines()[-1] == out.stderr.rstrip()


def test_an_unexpected_error_exits_1_with_its_type_and_a_hint(tmp_path: Path) -> None:
    """Not bad input (the warehouse is down): exit 1, one line with the exception's type, ``-v`` hinted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMP_", "AIRFLOW_CONN_"))}
    port = _closed_port()
    env |= {"PMP_HOME": str(tmp_path), "AIRFLOW_CONN_TSDB": json.dumps(
        {"conn_type": "postgres", "host": "127.0.0.1", "port": port, "login": "pmp", "password": SECRET,
         "schema": "pmp"})}
    out = subprocess.run([sys.executable, "-m", "pmp.cli", "catalog", "--iso", "ercot"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=600)
    lines = [line for line in out.stderr.splitlines() if "error" in line.lower()]
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[-1].startswith("pmp catalog: error: OperationalError: ") and lines[-1].endswith(
        "(run with -v for the traceback)") and f"{port}" in lines[-1]
    assert SECRET not in out.stderr + out.stdout


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


# -- DAG parsing, PMP_DAGS, run conf -------------------------------------------------------------
PARSE = """
import json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": {k.rsplit('/', 1)[-1]: v for k, v in bag.import_errors.items()}}))
"""


def _parse_dags(tmp_path: Path, **env: str) -> tuple[dict[str, Any], str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PMP_")} | {"PMP_HOME": str(tmp_path), **env}
    out = subprocess.run([sys.executable, "-c", PARSE, str(ROOT / "dags")], capture_output=True, text=True,
                         env=full, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stdout + out.stderr  # Airflow logs to stdout


def test_a_bad_setting_is_one_import_error_per_dag_file_in_one_sentence(tmp_path: Path) -> None:
    result, _ = _parse_dags(tmp_path, PMP_TASK_RETRIES="abc", PMP_STAGING_URL="ftp://files.example/raw/")
    assert result["dags"] == []
    files = sorted(p.name for p in (ROOT / "dags").glob("*.py"))
    assert sorted(result["errors"]) == files
    for error in result["errors"].values():
        last = error.strip().splitlines()[-1]
        assert last.endswith("PMP_STAGING_URL='ftp://files.example/raw/': expected file:///absolute/path/ or "
                             "s3://bucket/prefix/ (unset: " + (tmp_path / "staging").as_uri() + "/); "
                             "PMP_TASK_RETRIES='abc': expected a whole number >= 0 (unset: 3)"), last
        assert "invalid literal for int()" not in error


def test_pmp_dags_matching_nothing_is_a_warning_naming_the_patterns(tmp_path: Path) -> None:
    result, log = _parse_dags(tmp_path, PMP_DAGS="nomatch_*,ercot_lmp_dma_*")
    assert result == {"dags": [], "errors": {}}
    assert "PMP_DAGS pattern 'nomatch_*' matches no DAG id" in log
    assert "PMP_DAGS pattern 'ercot_lmp_dma_*' matches no DAG id" in log and "did you mean 'ercot_lmp_dam_daily'" in log
    assert "selects no DAG at all" in log
    assert validate.dag_selection_problems(["ercot_*"]) == []


def test_a_run_conf_key_no_param_declares_fails_naming_it() -> None:
    with pytest.raises(validate.UnknownNameError, match=r"unknown DAG param 'relaod' of DAG 'd'; known: "
                                                        r"lookback_minutes, reload; did you mean 'reload'\?"):
        validate.dag_run_conf({"relaod": True}, ["reload", "lookback_minutes"], dag_id="d")
    validate.dag_run_conf({"reload": True}, ["reload", "lookback_minutes"], dag_id="d")


def test_redacted_urls_keep_scheme_host_and_port() -> None:
    assert validate.redact_url(f"http://user:{SECRET}@127.0.0.1:58080/ercot/www/x?key={SECRET}#f") == \
        "http://127.0.0.1:58080/ercot/www/x"
    assert validate.redact_url("https://[::1]:8443/a") == "https://[::1]:8443/a"
    assert validate.redact_url("https://api.pjm.com/api/v1/da_hrl_lmps?rowCount=1") == \
        "https://api.pjm.com/api/v1/da_hrl_lmps"


# -- pmp check-config -----------------------------------------------------------------------------
BAD_SETTINGS = """\
airflow:
  connections:
    - conn_id: ercot_default
      conn_type: ercot
      conn_port: eighty
      conn_extra:
        mis_base_url: ftp://127.0.0.1:58080/misapp
        mis_requests_per_minut: 5
    - conn_id: tsdb
      conn_type: postgres
      conn_host: 127.0.0.1
    - conn_id: tsdb
      conn_type: postgres
  pools:
    - pool_name: ercot_apl
      pool_slot: -1
      pool_descripton: typo
  varables: []
"""


def test_check_config_lists_every_problem_of_a_deployment(tmp_path: Path, capsys: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:

    path = tmp_path / "airflow_settings.yaml"
    path.write_text(BAD_SETTINGS)
    for name in list(os.environ):
        if name.startswith(("PMP_", "AIRFLOW_CONN_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PMP_HOME", str(tmp_path))
    monkeypatch.setenv("PMP_STAGNG_URL", "s3://bucket/")  # misspelt: the setting it means stays unset
    monkeypatch.setenv("PMP_DAGS", "ercot_*,nomatch_*")
    monkeypatch.setenv("AIRFLOW_CONN_PJM_DEFAULT", '{"conn_type": "pjm", "extra": {"row_count": 0')
    assert main(["check-config", "--settings-file", str(path)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    expected = [
        "PMP_STAGNG_URL is set but is not a setting; did you mean 'PMP_STAGING_URL'?",
        "PMP_DAGS pattern 'nomatch_*' matches no DAG id",
        f"{path}: unknown section 'varables' under airflow; known: connections, pools, variables; did you mean 'variables'?",
        f"{path}: connection 'ercot_default': conn_port must be a port number 1-65535, not 'eighty'",
        f"{path}: connection 'tsdb' is declared twice",
        f"{path}: pool 'ercot_apl': unknown key 'pool_descripton'; known: pool_name, pool_slot, pool_description; "
        "did you mean 'pool_description'?",
        f"{path}: pool 'ercot_apl': pool_slot must be a whole number >= 0, not -1",
        "pool 'ercot_api' (used by ercot_",
        f"{path}: unknown extra 'mis_requests_per_minut' in connection 'ercot_default'",
        f"{path}: connection 'ercot_default': extra.mis_base_url must be a URL",
        "AIRFLOW_CONN_PJM_DEFAULT: not valid JSON",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, out)
    assert "connection 'ercot_default' (ERCOT (MIS and Public API)) is not defined" not in out  # it is declared
    assert err.strip() == f"pmp check-config: {len(lines)} problem(s)"
    assert "pmp-local-only" not in out  # no password of a connection is shown


def test_check_config_passes_the_bundles_own_settings(capsys: Any, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("PMP_", "AIRFLOW_CONN_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PMP_HOME", str(tmp_path))
    assert main(["check-config"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert re.search(r"^pmp check-config: ok \(\d+ settings; .*airflow_settings.yaml; \d+ pools; \d+ connections\)$",
                     out.strip().splitlines()[-1])


def test_every_setting_is_read_through_the_validation_layer_and_documented() -> None:
    """No module reads a ``PMP_*`` variable from ``os.environ`` itself (it would skip the check),
    and the README's settings table lists every declared setting."""
    direct = re.compile(r"""(os\.environ(\.get)?[\[(]|os\.getenv\()\s*["']PMP_""")
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "include" / "pmp").rglob("*.py")
                 if p.name != "validate.py" and direct.search(p.read_text())]
    assert offenders == []
    readme = (ROOT / "README.md").read_text()
    assert [name for name in validate.SETTINGS if f"| `{name}` |" not in readme] == []


def test_airflow_settings_from_a_bad_file_is_one_line_and_imports_nothing(tmp_path: Path, capsys: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from pmp import airflow_settings

    path = tmp_path / "airflow_settings.yaml"
    path.write_text(BAD_SETTINGS)
    monkeypatch.setattr(airflow_settings, "SETTINGS_FILE", path)
    called = []
    monkeypatch.setattr(airflow_settings, "import_into_airflow", lambda *a, **k: called.append(a))
    assert main(["airflow-settings", "import"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and called == []
    assert err.splitlines() == [f"pmp airflow-settings: error: {path}: unknown section 'varables' under airflow; "
                                "known: connections, pools, variables; did you mean 'variables'? (and 6 more: pmp "
                                "check-config lists them)"]


@pytest.mark.integration
def test_a_real_run_with_a_misspelt_conf_key_fails_before_fetching(env, dagbag, capfd: Any) -> None:
    """``dag.test(run_conf={"lookback_minute": 30})``: the run fails in its first task, naming the
    key and the params it has; nothing is fetched or loaded (Airflow itself passes the key on)."""
    from airflow.sdk import DagRunState

    sim = env["sim"]()
    dag = dagbag.get_dag("nyiso_lmp_rt5m_realtime")
    dr = dag.test(run_conf={"lookback_minute": 30})
    out, err = capfd.readouterr()  # the task's log (Airflow logs to stdout)
    assert dr.state == DagRunState.FAILED
    assert dr.get_task_instance("ingest").state == "failed"  # the one task of a real-time run
    assert "unknown DAG param 'lookback_minute' of DAG 'nyiso_lmp_rt5m_realtime'; known: lookback_minutes" in out + err
    assert sim.requests == []
