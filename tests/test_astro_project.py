"""The Astro project (`astro dev start`, `astro deploy`), checked as far as it can be without Docker.

Docker cannot run on these machines, so no image is built here: these tests read the files the
Astro CLI and Docker read (Dockerfile, .astro/config.yaml, packages.txt, .dockerignore,
docker-compose.override.yml, the astro dev settings) and check what they would do with the files of
this checkout. README "Deploy" says what was and was not run.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from pmp import airflow_settings

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_IMAGE = re.compile(r"^astrocrpublic\.azurecr\.io/runtime:3\.3-\d+$")


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_one_runtime_stage_installing_the_prebuilt_wheels() -> None:
    steps = _instructions(ROOT / "Dockerfile")
    froms = [rest for word, rest in steps if word == "FROM"]
    assert len(froms) == 1 and steps[0][0] == "FROM", froms  # the CLI reads the first FROM as the Runtime
    assert RUNTIME_IMAGE.match(froms[0]), froms[0]
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    assert "dist/wheels/power_market_pipeline-" in runs and "dist/wheels/pmp_bulk-" in runs
    assert "manylinux_2_28" in runs  # the wheel scripts/package.sh builds, not one for this machine
    for word in ("cargo", "maturin", "rustup", "rust_operators", " -e "):
        assert word not in runs, f"the image must not build from source ({word})"


def test_astro_cli_project_files() -> None:
    config = yaml.safe_load((ROOT / ".astro" / "config.yaml").read_text())
    assert config["project"]["name"] == "power-market-pipeline"
    # packages.txt: apt packages for the Runtime image, one per line (none needed: psycopg's wheel has libpq)
    for line in (ROOT / "packages.txt").read_text().splitlines():
        assert re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", line.strip()), f"packages.txt: {line!r}"
    # requirements.txt: the Runtime's ONBUILD `pip install -r`; names only (the image decides versions)
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        assert not line or re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+", line), line


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.override.yml").read_text())


def test_compose_override_runs_warehouse_s3_and_simulator_on_the_astro_network() -> None:
    services = _compose()["services"]
    for name, (service, port) in {"timescaledb": ("timescaledb", 5432), "seaweedfs": ("seaweedfs", 8333),
                                  "simulator": ("simulator", 58080)}.items():
        assert name in services and services[name]["networks"] == ["airflow"], name
        assert (service, port) in airflow_settings.ASTRO_SERVICES.values(), name
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:") and "pg15" in services["timescaledb"]["image"]
    assert "-s3.port=8333" in " ".join(services["seaweedfs"]["command"])
    assert services["simulator"]["entrypoint"][:2] == ["pmp", "simulate"]
    assert services["simulator"]["entrypoint"][services["simulator"]["entrypoint"].index("--port") + 1] == "58080"
    # every Airflow component that parses or runs tasks gets the same PMP_* settings
    envs = [services[c]["environment"] for c in ("scheduler", "dag-processor", "triggerer", "api-server")]
    assert all(e == envs[0] for e in envs) and envs[0]["PMP_STAGING_URL"] == "s3://pmp-staging/"
    bucket = envs[0]["PMP_STAGING_URL"].split("/")[2]
    assert f"s3.bucket.create -name {bucket}" in " ".join(services["seaweedfs"]["command"])
    # the credentials the seaweedfs service accepts are the ones the pmp_s3 connection sends
    s3 = airflow_settings.connections()["pmp_s3"]
    assert f'"accessKey":"{s3["login"]}","secretKey":"{s3["password"]}"' in " ".join(services["seaweedfs"]["command"])
    pg = airflow_settings.connections()["tsdb"]
    env = services["timescaledb"]["environment"]
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]) == (pg["login"], pg["password"], pg["schema"])


def test_astro_dev_connections_use_service_names() -> None:
    settings = airflow_settings.for_astro()
    services = set(_compose()["services"])
    text = yaml.safe_dump(settings)
    assert "127.0.0.1" not in text and "localhost" not in text
    conns = {c["conn_id"]: c for c in settings["airflow"]["connections"]}
    assert (conns["tsdb"]["conn_host"], conns["tsdb"]["conn_port"]) == ("timescaledb", 5432)
    assert conns["pmp_s3"]["conn_extra"]["endpoint_url"] == "http://seaweedfs:8333"
    hosts = set()
    for c in conns.values():
        if c.get("conn_host"):
            hosts.add(c["conn_host"])
        hosts |= set(re.findall(r"//([^:/]+)", yaml.safe_dump(c.get("conn_extra") or {})))
    local = {h for h in hosts if "." not in h}  # real ISO hosts (only when a user sets them) have dots
    assert local and local <= services, local - services
    # the same pools and the same connection ids as the local settings
    assert settings["airflow"]["pools"] == airflow_settings.read()["pools"]
    assert set(conns) == set(airflow_settings.connections())


def test_astro_settings_refuse_a_loopback_service_they_do_not_know(tmp_path: Path) -> None:
    doc = yaml.safe_load(airflow_settings.SETTINGS_FILE.read_text())
    doc["airflow"]["connections"].append({"conn_id": "x", "conn_type": "http", "conn_host": "127.0.0.1",
                                          "conn_port": 1234})
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match="connection x: loopback port 1234"):
        airflow_settings.for_astro(path)


# ---------------------------------------------------------------- .dockerignore


def _rules() -> list[tuple[bool, re.Pattern[str], str]]:
    """.dockerignore as Docker reads it: Go filepath.Match patterns with ``**``, ``!`` exceptions, the
    last matching rule wins, and a rule matching a directory matches everything below it."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip("/") if negate else line.strip("/")
        rx = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                rx, i = rx + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                rx, i = rx + ".*", i + 2
            elif pattern[i] == "*":
                rx, i = rx + "[^/]*", i + 1
            elif pattern[i] == "?":
                rx, i = rx + "[^/]", i + 1
            else:
                rx, i = rx + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(rx + "$"), pattern))
    return rules


def _in_context(path: str, rules: list[tuple[bool, re.Pattern[str], str]]) -> bool:
    parts = path.rstrip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negate, rx, _ in rules:
        if any(rx.match(p) for p in prefixes):
            included = negate
    return included


def _checkout_files(rules: list[tuple[bool, re.Pattern[str], str]]) -> list[str]:
    """Every file of this checkout, tracked or not (the build context is the directory, not git).
    An excluded directory that no ``!`` rule reaches into is not walked (as Docker does), but it is
    listed, so the rules are checked against it."""
    out = []
    for top, dirs, files in os.walk(ROOT):
        rel_top = Path(top).relative_to(ROOT).as_posix()
        keep = []
        for d in dirs:
            rel = d if rel_top == "." else f"{rel_top}/{d}"
            reopened = any(neg and (text.startswith(rel + "/") or "*" in text) for neg, _, text in rules)
            if rel == ".git" or (not _in_context(rel, rules) and not reopened):
                out.append(rel + "/")
            else:
                keep.append(d)
        dirs[:] = keep
        out.extend(f if rel_top == "." else f"{rel_top}/{f}" for f in files)
    return out


def test_dockerignore_keeps_the_build_context_to_what_the_image_runs() -> None:
    rules = _rules()
    files = _checkout_files(rules)
    context = [f for f in files if _in_context(f, rules)]
    for heavy in (".venv/", ".pmp/", "rust_operators/", ".git/"):  # present in every set-up checkout
        assert heavy in files or not (ROOT / heavy).is_dir(), heavy
        assert not _in_context(heavy, rules), heavy
    for f in context:
        top = f.split("/")[0]
        assert top not in (".venv", ".pmp", "rust_operators", "tests", "include", "sql", "build", ".ci"), f
        assert "__pycache__" not in f and not f.endswith(".pyc"), f
        assert not (f.startswith("dist/") and not f.startswith("dist/wheels/")), f
        assert not f.endswith(".txt") or not f.startswith("dist/"), f
    for needed in ["Dockerfile", "requirements.txt", "packages.txt", "airflow_settings.yaml",
                   *[f for f in files if f.startswith("dags/") and f.endswith(".py")]]:
        assert needed in context, needed
    # the prebuilt wheels the Dockerfile installs, whenever scripts/package.sh has made them
    for wheel in (ROOT / "dist" / "wheels").glob("*.whl"):
        assert _in_context(wheel.relative_to(ROOT).as_posix(), rules), wheel.name
    # rules on paths that must exist in every checkout, so they cannot silently match nothing
    for path in (".venv/bin/python", ".pmp/x", "rust_operators/target/release/x", "include/pmp/db.py",
                 "dist/mwaa/plugins.zip", "dist/wheels/pmp_bulk.auditwheel.txt"):
        assert not _in_context(path, rules), path
    assert _in_context("dist/wheels/pmp_bulk-0.1.0-cp311-abi3-manylinux_2_28_x86_64.whl", rules)
    size = sum((ROOT / f).stat().st_size for f in context)
    print(f"Astro build context: {len(context)} files, {size / 1e6:.1f} MB")


def test_dockerfile_copies_nothing_the_context_leaves_out() -> None:
    """The Runtime's ONBUILD copies the context to /usr/local/airflow; the Dockerfile reads only from there."""
    steps = _instructions(ROOT / "Dockerfile")
    assert not [rest for word, rest in steps if word in ("COPY", "ADD")]
    paths = re.findall(r"/usr/local/airflow/(\S+)", " ".join(rest for word, rest in steps if word == "RUN"))
    rules = _rules()
    for p in paths:
        assert _in_context(p.replace("*", "x"), rules), p


def test_readme_says_what_was_and_was_not_run() -> None:
    deploy = (ROOT / "README.md").read_text().split("## Deploy", 1)[1].split("\n## ", 1)[0]
    for word in ("scripts/package.sh", "dist/mwaa/plugins.zip", "dist/mwaa/requirements.txt",
                 "dist/mwaa/startup.sh", "astro dev start", "astro deploy", "not run"):
        assert word in deploy, word
    out = subprocess.run(["git", "check-ignore", "-q", "dist/x"], cwd=ROOT)
    assert out.returncode == 0, "dist/ must be ignored by git (built artifacts)"


def test_local_port_variables_move_the_declared_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """scripts/demo.sh with PMP_SIM_PORT (and services.sh with PMP_PG_PORT/PMP_S3_PORT) import
    connections that follow the moved ports; with none set they are exactly as declared."""
    for var in airflow_settings.LOCAL_PORTS.values():
        monkeypatch.delenv(var, raising=False)
    declared = airflow_settings.connections(moved=False)
    assert airflow_settings.connections() == declared
    monkeypatch.setenv("PMP_SIM_PORT", "58106")
    monkeypatch.setenv("PMP_PG_PORT", "55499")
    moved = airflow_settings.connections()
    urls = [v for c in moved.values() for v in (c.get("extra") or {}).values()
            if isinstance(v, str) and "//127.0.0.1:" in v]
    assert urls and all("127.0.0.1:58106/" in u for u in urls if "/ercot/" in u or "/caiso/" in u)
    assert not [u for u in urls if ":58080" in u]
    assert moved["ercot_default"]["extra"]["mis_base_url"] == "http://127.0.0.1:58106/ercot/www"
    assert moved["tsdb"]["port"] == 55499 and declared["tsdb"]["port"] == 55432
    env = airflow_settings.env()
    assert "58106" in env["AIRFLOW_CONN_ERCOT_DEFAULT"] and "58080" not in env["AIRFLOW_CONN_ERCOT_DEFAULT"]
    monkeypatch.setenv("PMP_SIM_PORT", "not-a-port")
    with pytest.raises(ValueError, match="PMP_SIM_PORT='not-a-port': not a TCP port"):
        airflow_settings.connections()
