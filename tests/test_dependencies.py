"""One dependency truth: the versions the tests run on are the ones the managed platforms install.

MWAA 3.3.1 forces Airflow's constraints file (and never lets a user override its essential pins);
Astro Runtime 3.3 installs the same constraints. The lock the suite runs on must agree with both
for every package they pin, requirements.txt must not contradict them, and the environment the
tests run in must be that lock.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints" / "airflow-3.3.1-py3.12.txt"
ESSENTIAL = ROOT / "constraints" / "mwaa-essential-3.3.1.txt"
SHARED = ROOT.parent / "shared" / "reference" / "mwaa-3.3.1"


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw.split("[")[0].strip().lower())


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[_name(name)] = version.split(";")[0].strip()
    return out


def requirement_specs(path: Path) -> dict[str, str]:
    """name -> version specifier ('' when unpinned) of a requirements file."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.match(r"([A-Za-z0-9_.\-\[\]]+)\s*(.*)", line)
        assert m, f"{path.name}: cannot read {line!r}"
        out[_name(m.group(1))] = m.group(2).strip()
    return out


def test_lock_uses_the_constraint_version_of_every_pinned_package() -> None:
    lock, constraints, essential = pins(ROOT / "requirements-lock.txt"), pins(CONSTRAINTS), pins(ESSENTIAL)
    wrong = {n: (v, constraints[n]) for n, v in lock.items() if n in constraints and constraints[n] != v}
    assert not wrong, f"requirements-lock.txt differs from the Airflow 3.3.1 constraints: {wrong}"
    wrong = {n: (v, essential[n]) for n, v in lock.items() if n in essential and essential[n] != v}
    assert not wrong, f"requirements-lock.txt overrides MWAA's essential pins: {wrong}"


def test_essential_pins_agree_with_the_constraints() -> None:
    constraints = pins(CONSTRAINTS)
    clash = {n: v for n, v in pins(ESSENTIAL).items() if n in constraints and constraints[n] != v}
    assert not clash, clash


def test_requirements_never_contradict_the_platform() -> None:
    constraints = pins(CONSTRAINTS) | pins(ESSENTIAL)
    for path in (ROOT / "requirements.txt", ROOT / "requirements-dev.txt"):
        for name, spec in requirement_specs(path).items():
            if spec and name in constraints:
                assert spec == f"=={constraints[name]}", (
                    f"{path.name}: {name}{spec} contradicts the platform's pin {name}=={constraints[name]}"
                )
    runtime = requirement_specs(ROOT / "requirements.txt")
    missing = sorted(n for n in runtime if n not in constraints)
    assert not missing, f"runtime requirements the platform constraints do not pin: {missing}"


def test_installed_environment_is_the_lock() -> None:
    lock = pins(ROOT / "requirements-lock.txt")
    wrong = {}
    for name, version in lock.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong[name] = (version, None)
            continue
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"the test environment is not requirements-lock.txt (scripts/setup.sh): {wrong}"
    assert sys.version_info[:2] == (3, 12), "the platforms run Python 3.12 (scripts/python.sh)"


@pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared/reference/mwaa-3.3.1 beside this checkout")
def test_vendored_constraints_are_the_platform_files() -> None:
    assert CONSTRAINTS.read_bytes() == (SHARED / "airflow_constraints-3.3.1-py3.12.txt").read_bytes()
    assert ESSENTIAL.read_bytes() == (SHARED / "mwaa_essential_constraints.txt").read_bytes()


def test_dev_tools_the_constraints_do_not_pin_are_pinned_here() -> None:
    constraints = pins(CONSTRAINTS) | pins(ESSENTIAL)
    loose = sorted(n for n, spec in requirement_specs(ROOT / "requirements-dev.txt").items()
                   if n not in constraints and not spec.startswith("=="))
    assert not loose, f"requirements-dev.txt: pin {loose} (the constraints do not)"
