"""The deployable artifacts (scripts/package.sh) work where they are installed, not only in a checkout.

The MWAA bundle is unpacked and installed the way MWAA installs it: a fresh Python 3.12 virtualenv
outside the repository, ``requirements.txt`` with the constraints it ships (plus MWAA's essential
pins, which MWAA always adds), wheels only from the unpacked ``plugins.zip`` and a local wheel cache
(``--no-index``). Then the installed package must parse every DAG without import errors, migrate a
warehouse, read the catalog and serve the simulator. The same requirements must resolve for CPython
3.12 on manylinux x86_64 with binary wheels only (MWAA's Amazon Linux 2023 image).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
CONSTRAINTS = ROOT / "constraints" / "airflow-3.3.1-py3.12.txt"
ESSENTIAL = ROOT / "constraints" / "mwaa-essential-3.3.1.txt"
MWAA_PLUGINS = "/usr/local/airflow/plugins"
# One worker runs them all: they share one build and one fresh MWAA install (pyproject: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("packaging")
PLATFORMS = ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
             "--platform", "manylinux2014_x86_64", "--platform", "linux_x86_64"]


def _names(path: Path) -> list[str]:
    """Requirement names of a requirements file (comments and option lines dropped)."""
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.append(line)
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.split("[")[0].split("=")[0].strip().lower())


def _python312() -> str:
    out = subprocess.run(["bash", "-c", "source scripts/python.sh && find_python"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


# ---------------------------------------------------------------- build (scripts/package.sh)


@pytest.fixture(scope="module")
def dist() -> Path:
    """Every artifact, built by the one command (cached: unchanged parts are not rebuilt)."""
    out = subprocess.run([str(ROOT / "scripts" / "package.sh"), "--wheelhouse"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    print(out.stdout)
    return DIST


def _wheels(dist: Path) -> tuple[Path, Path]:
    (pmp,) = dist.glob("wheels/power_market_pipeline-*-py3-none-any.whl")
    (bulk,) = dist.glob("wheels/pmp_bulk-*-cp311-abi3-manylinux_2_28_x86_64.whl")
    return pmp, bulk


def _wheelhouse() -> Path:
    (house,) = (ROOT / ".pmp" / "wheelhouse").glob("*/.complete")
    return house.parent


def test_pmp_wheel_ships_migrations_settings_and_dependencies(dist: Path) -> None:
    pmp, _ = _wheels(dist)
    with zipfile.ZipFile(pmp) as z:
        names = set(z.namelist())
        for sql in sorted((ROOT / "sql").glob("*.sql")):  # every migration, byte for byte
            assert z.read(f"pmp/_data/sql/{sql.name}") == sql.read_bytes(), sql.name
        assert z.read("pmp/_data/airflow_settings.yaml") == (ROOT / "airflow_settings.yaml").read_bytes()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [line.split(":", 1)[1].strip() for line in z.read(meta).decode().splitlines()
                    if line.startswith("Requires-Dist:") and "extra ==" not in line]  # extras are opt-in
        entry_points = z.read(meta.replace("METADATA", "entry_points.txt")).decode()
    assert sorted(map(_norm, requires)) == sorted(map(_norm, _names(ROOT / "requirements.txt")))
    assert "pmp = pmp.cli:main" in entry_points and "pmp.provider:get_provider_info" in entry_points
    assert not [n for n in names if n.startswith(("tests/", "sql/", "include/")) or "__pycache__" in n]


def test_bulk_wheel_is_manylinux_2_28_or_older(dist: Path) -> None:
    report = (dist / "wheels" / "pmp_bulk.auditwheel.txt").read_text()
    print(report)
    m = re.search(r'consistent with the following platform tag:\s*"manylinux_(\d+)_(\d+)_x86_64"', report.replace("\n", " "))
    assert m, report
    assert (int(m.group(1)), int(m.group(2))) <= (2, 28), report


def test_mwaa_bundle_layout(dist: Path) -> None:
    mwaa = dist / "mwaa"
    pmp, bulk = _wheels(dist)
    assert sorted(p.name for p in (mwaa / "dags").glob("*.py")) == sorted(p.name for p in (ROOT / "dags").glob("*.py"))
    with zipfile.ZipFile(mwaa / "plugins.zip") as z:
        # unpacked into /usr/local/airflow/plugins: files at the root, where --find-links looks
        assert sorted(z.namelist()) == sorted([pmp.name, bulk.name, CONSTRAINTS.name])
        assert z.read(CONSTRAINTS.name) == CONSTRAINTS.read_bytes()
    lines = [line for line in (mwaa / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == f'--constraint "{MWAA_PLUGINS}/{CONSTRAINTS.name}"'
    assert lines[1] == f"--find-links {MWAA_PLUGINS}"
    version = pmp.name.split("-")[1]
    assert f"power-market-pipeline=={version}" in lines and f"pmp-bulk=={bulk.name.split('-')[1]}" in lines
    assert set(map(_norm, _names(ROOT / "requirements.txt"))) <= set(map(_norm, lines[2:]))


def test_startup_script_documents_every_setting(dist: Path) -> None:
    """Every PMP_* variable production code reads is exported (or explained) by startup.sh."""
    script = (dist / "mwaa" / "startup.sh").read_text()
    out = subprocess.run(["sh", "-n", str(dist / "mwaa" / "startup.sh")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    from pmp import validate

    # every setting is declared in pmp.validate.SETTINGS and read through it (tests/test_bad_input.py)
    read = {name for name in validate.SETTINGS if not name.startswith("PMP_SIM")}  # the simulator's: dev only
    assert "PMP_STAGING_URL" in read
    missing = sorted(name for name in read if name not in script)
    assert not missing, f"startup.sh does not document {missing}"
    exported = re.findall(r"^export (PMP_[A-Z0-9_]+)=", script, flags=re.M)
    assert len(exported) == len(set(exported))


# ---------------------------------------------------------------- install it as MWAA does


@pytest.fixture(scope="module")
def mwaa(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """dist/mwaa unpacked into a fresh directory and installed into a fresh Python 3.12 venv."""
    base = tmp_path_factory.mktemp("mwaa")
    shutil.copytree(dist / "mwaa" / "dags", base / "dags")
    plugins = base / "plugins"
    with zipfile.ZipFile(dist / "mwaa" / "plugins.zip") as z:
        z.extractall(plugins)
    requirements = base / "requirements.txt"
    requirements.write_text((dist / "mwaa" / "requirements.txt").read_text().replace(MWAA_PLUGINS, str(plugins)))
    venv = base / "venv"
    subprocess.run([_python312(), "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    house = _wheelhouse()
    start = time.monotonic()
    # the MWAA image has Airflow 3.3.1 already, and adds its essential pins to every install
    out = subprocess.run(
        # --no-compile: byte-compiling ~170 packages is most of the install's time and tests nothing here
        [*pip, "install", "-q", "--no-compile", "--no-index", "--find-links", str(plugins), "--find-links", str(house),
         "apache-airflow==3.3.1", "-r", str(requirements), "-c", str(ESSENTIAL)],
        capture_output=True, text=True, cwd=base,
    )
    seconds = time.monotonic() - start
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    print(f"MWAA requirements installed into a fresh venv in {seconds:.0f} s")
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(base),
        "AIRFLOW_HOME": str(base / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(base / "dags"),
        # the first import of a fresh venv compiles every module; on two cores shared with the rest of
        # the suite that can pass the 30 s default, which says nothing about a deployment's parse time
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        "PMP_STAGING_URL": (base / "staging").as_uri() + "/",
    }
    return {"base": base, "venv": venv, "python": str(venv / "bin" / "python"), "pip": pip, "env": env,
            "plugins": plugins, "requirements": requirements, "seconds": seconds}


def test_mwaa_requirements_resolve_for_manylinux_cpython312(mwaa: dict) -> None:
    """The resolution the issue asks for (binary wheels for CPython 3.12 on manylinux x86_64), here
    against the plugins and the wheel cache (scripts/package.sh --wheelhouse ran the same one
    against the index when it filled the cache)."""
    out = subprocess.run(
        [*mwaa["pip"], "install", "--dry-run", "--ignore-installed", "--python-version", "3.12", *PLATFORMS,
         "--only-binary=:all:", "--target", str(mwaa["base"] / "target"), "--no-index",
         "--find-links", str(mwaa["plugins"]), "--find-links", str(_wheelhouse()),
         "-r", str(mwaa["requirements"]), "apache-airflow==3.3.1", "-c", str(CONSTRAINTS), "-c", str(ESSENTIAL)],
        capture_output=True, text=True, cwd=mwaa["base"],
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    (would,) = [line for line in out.stdout.splitlines() if line.startswith("Would install")]
    for pin in ("apache-airflow-3.3.1", "apache-airflow-providers-postgres-7.0.1",
                "apache-airflow-providers-amazon-9.34.0", "SQLAlchemy-2.0.51", "pmp-bulk-0.1.0",
                "power-market-pipeline-0.1.0"):
        assert pin in would.split(), pin


PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
import pmp, pmp_bulk
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                  "pmp": pmp.__file__, "pmp_bulk": pmp_bulk.__file__,
                  "simulator": sorted(m for m in sys.modules if m.startswith("pmp.simulator"))}))
"""


def test_installed_bundle_parses_every_dag(mwaa: dict) -> None:
    from pmp import registry, summary
    from pmp.factory import build_dags

    out = subprocess.run([mwaa["python"], "-c", PARSE, str(mwaa["base"] / "dags")], capture_output=True,
                         text=True, env=mwaa["env"], cwd=mwaa["base"], timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["dags"] == sorted([*(k for iso in registry.isos() for k in build_dags(iso)), *summary.build_dags()])
    site = str(mwaa["venv"])
    assert result["pmp"].startswith(site) and result["pmp_bulk"].startswith(site)  # not the checkout
    assert result["simulator"] == [], "parsing the DAGs imported the simulator (a development tool)"


def _pmp(mwaa: dict, *args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(mwaa["venv"] / "bin" / "pmp"), *args], capture_output=True, text=True,
                          env={**mwaa["env"], **(env or {})}, cwd=mwaa["base"], timeout=300, **kw)


@pytest.mark.integration
def test_installed_cli_migrates_and_reads_the_catalog(mwaa: dict, private_warehouse: str) -> None:
    conn = {"AIRFLOW_CONN_TSDB": os.environ["AIRFLOW_CONN_TSDB"]}  # the private database
    first = _pmp(mwaa, "db", "migrate", env=conn)
    assert first.returncode == 0, first.stderr[-3000:]
    migrations = sorted(p.name for p in (ROOT / "sql").glob("[0-9][0-9][0-9]_*.sql"))
    assert [line.split()[1] for line in first.stdout.splitlines() if line.startswith("applied")] == migrations
    second = _pmp(mwaa, "db", "migrate", env=conn)
    assert [line.split()[1] for line in second.stdout.splitlines() if line.startswith("current")] == migrations
    catalog = _pmp(mwaa, "catalog", env=conn)
    assert catalog.returncode == 0, catalog.stderr[-3000:]
    assert "lmp" in catalog.stdout or "dataset" in catalog.stdout.lower(), catalog.stdout


def test_installed_cli_serves_the_simulator(mwaa: dict) -> None:
    import requests

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([str(mwaa["venv"] / "bin" / "pmp"), "simulate", "--port", str(port), "--fault",
                             "rate_limit=2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=mwaa["env"], cwd=mwaa["base"])
    try:
        deadline = time.monotonic() + 180  # a start-up bound, not a speed claim: imports on a loaded machine
        while time.monotonic() < deadline:
            try:
                faults = requests.get(f"http://127.0.0.1:{port}/__sim/faults", timeout=1).json()
                break
            except requests.ConnectionError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stdout.read()) from None
                time.sleep(0.1)
        else:
            raise AssertionError("the installed simulator did not answer")
        assert faults["rate_limit"] == 2
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


# ---------------------------------------------------------------- the simulator stays a dev tool


def test_production_code_never_imports_the_simulator() -> None:
    """Every module of the package except the simulator, the CLI's parser and every DAG file: none
    of them may import pmp.simulator (it is a development tool; ``pmp simulate`` imports it when run)."""
    code = """
import glob, importlib, pathlib, runpy, sys
import pmp
root = pathlib.Path(pmp.__file__).parent
for path in sorted(root.rglob("*.py")):  # (pkgutil.walk_packages would import pmp.simulator to walk it)
    rel = path.relative_to(root).with_suffix("")
    name = ".".join(("pmp", *(rel.parts[:-1] if rel.name == "__init__" else rel.parts)))
    if name != "pmp.simulator" and not name.startswith("pmp.simulator."):
        importlib.import_module(name)
from pmp import cli
cli.build_parser().parse_args(["simulate", "--port", "1"])
for f in sorted(glob.glob("dags/*.py")):
    runpy.run_path(f)
print(sorted(m for m in sys.modules if m.startswith("pmp.simulator")))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
