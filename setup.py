"""Build hooks of the ``pmp`` wheel (all other metadata is in pyproject.toml).

Dependencies: requirements.txt, the list the deployments install, read as it is.

The warehouse migrations (top-level ``sql/``) and the local connections and pools
(``airflow_settings.yaml``) live at the repository root, where the Astro CLI and the migration
authors expect them: ``sql/`` stays their single source. A built wheel carries copies of them as
package data in ``pmp/_data/`` so an installed ``pmp`` (MWAA, Astro, any virtualenv) finds them
without a checkout (``pmp.settings.data_file``). Editable installs and checkouts read the
repository's own files, so nothing is copied for them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# (source relative to the repository root, glob of files to ship) -> pmp/_data/<source>
PACKAGE_DATA = {"sql": "*.sql", "airflow_settings.yaml": None}


def requirements() -> list[str]:
    """requirements.txt (one name a line, comments allowed): the wheel's runtime dependencies."""
    lines = (line.split("#", 1)[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines())
    return [line for line in lines if line]


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        dest = Path(self.build_lib) / "pmp" / "_data"
        shutil.rmtree(dest, ignore_errors=True)
        for source, pattern in PACKAGE_DATA.items():
            src = ROOT / source
            if pattern is None:
                files = [src]
            else:
                files = sorted(src.glob(pattern))
                if not files:
                    raise SystemExit(f"setup.py: no {pattern} in {src}: nothing to ship as package data")
            for path in files:
                target = dest / path.relative_to(ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)


setup(install_requires=requirements(), cmdclass={"build_py": BuildPyWithData})
