"""The ISO packages are the one place an ISO is declared: the provider's connection types, the
connections and pools of airflow_settings.yaml, README's ISO tables and the markets the warehouse
accepts all come from them (a new ISO is new files only; README.md's "Adding an ISO")."""

from __future__ import annotations

import re
import subprocess
import sys

import psycopg
import pytest
import yaml

from pmp import local_settings, registry
from pmp.isohook import Extra, IsoHttpHook, iso_hook_classes, parse_extra
from pmp.provider import get_provider_info
from pmp.settings import REPO_ROOT


def test_airflow_settings_yaml_is_what_the_iso_hooks_declare() -> None:
    text = local_settings.SETTINGS_FILE.read_text()
    assert local_settings.render(text) == text, "run `python -m pmp.local_settings`"
    conns = {c["conn_id"]: c for c in yaml.safe_load(text)["airflow"]["connections"]}
    for hook in iso_hook_classes():
        assert conns[hook.default_conn_name]["conn_type"] == hook.conn_type
    # the warehouse and S3 connections are kept as written
    assert {"tsdb", "pmp_s3"} <= set(conns)


def test_generator_check_fails_on_drift(tmp_path, monkeypatch) -> None:
    stale = tmp_path / "airflow_settings.yaml"
    text = local_settings.SETTINGS_FILE.read_text()
    generated = "pool_name: caiso_oasis\n      pool_slot: 1"  # a pool the CAISO hook declares
    assert generated in text
    stale.write_text(text.replace(generated, generated.replace("slot: 1", "slot: 7")))
    monkeypatch.setattr(local_settings, "SETTINGS_FILE", stale)
    assert local_settings.main(["--check"]) == 1
    assert local_settings.main([]) == 0  # rewrites it
    assert stale.read_text() == text
    out = subprocess.run([sys.executable, "-m", "pmp.local_settings", "--check"], capture_output=True, text=True,
                         cwd=REPO_ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_readme_iso_tables_are_generated_from_the_registry() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    assert local_settings.render_readme(text) == text, "run `python -m pmp.local_settings`"
    for iso in registry.isos():
        row = next(line for line in text.splitlines() if f"include/pmp/isos/{iso}/README.md) |" in line
                   and line.startswith("| ") and "`lmp_" in line)
        assert set(re.findall(r"`([a-z0-9_]+)`", row)) == {s.dataset for s in registry.datasets(iso)}
        assert (REPO_ROOT / "include" / "pmp" / "isos" / iso / "README.md").is_file()


def test_provider_reads_the_same_hooks_the_packages_define() -> None:
    types = {c["connection-type"]: c["hook-class-name"] for c in get_provider_info()["connection-types"]}
    hooks = iso_hook_classes()
    assert types == {h.conn_type: f"{h.__module__}.{h.__qualname__}" for h in hooks}
    assert {type(registry.adapter(iso).hook()) for iso in registry.isos()} <= set(hooks)


def test_every_dataset_pool_is_declared_by_its_iso_hook() -> None:
    for spec in registry.datasets():
        hook = type(registry.adapter(spec.iso).hook())
        assert spec.pool in hook.pools, spec.key
        assert registry.adapter(spec.iso).pool in hook.pools


def test_markets_come_from_the_registry(warehouse: str) -> None:
    """No CHECK lists markets in the database any more: a market some registry entry declares
    loads, one none declares is refused by the loader (tests/test_loader.py)."""
    from pmp import db

    assert registry.markets("lmp") >= {"DAM", "RT5M", "RT60M", "RT15M"}
    with psycopg.connect(warehouse) as conn:
        db.migrate(conn)
        checks = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid IN ('lmp'::regclass, 'ancillary_services'::regclass)"
            " AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%market%'").fetchall()
    assert checks == []


def test_extras_parse_by_declared_type() -> None:
    assert parse_extra(Extra("n", float, 5.0), None, "c") == 5.0
    assert parse_extra(Extra("n", float, 5.0), "", "c") == 5.0
    assert parse_extra(Extra("n", int, 5), "7", "c") == 7
    assert parse_extra(Extra("b", bool, True), "false", "c") is False
    assert parse_extra(Extra("b", bool, False), "YES", "c") is True
    with pytest.raises(ValueError, match=r"connection 'c': extra.n must be a number \(float\), not 'abc'"):
        parse_extra(Extra("n", float, 5.0), "abc", "c")
    assert issubclass(iso_hook_classes()[0], IsoHttpHook)
