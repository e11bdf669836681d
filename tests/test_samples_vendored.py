"""tests/samples is a byte-for-byte copy of the project's real ISO files (../shared/samples), so the
suite runs from a clone anywhere; this test fails as soon as the two differ (a sample added,
changed or removed in ../shared: copy it over)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from helpers import ROOT, SHARED_SAMPLES


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_vendored_samples_are_the_shared_samples() -> None:
    vendored = _digests(ROOT / "tests" / "samples")
    assert {k.split("/")[0] for k in vendored} >= {"ercot", "caiso", "nyiso", "isone"}
    # CRLF and missing final newlines survive git (.gitattributes: -text)
    crlf = next(p for p in vendored if "palIntegrated" in p)
    assert b"\r\n" in (ROOT / "tests" / "samples" / crlf).read_bytes()
    if SHARED_SAMPLES.is_dir():  # a checkout beside the project's shared folder
        assert vendored == _digests(SHARED_SAMPLES)
