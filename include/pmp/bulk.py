"""The Rust bulk processor (``pmp_bulk``, built from ``rust_operators/``) behind the pipeline's
normalize step: raw archives in the staging store -> one normalized Parquet file.

Same contract as :func:`pmp.pipeline.normalize` (a stage manifest in, a load manifest out), so the
loader cannot tell the two engines apart; the Python normalizers stay the reference and a test
requires identical output. Used by :class:`pmp.operators.RustBulkProcessOperator` and by
``pmp normalize --engine rust``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pmp import registry
from pmp.loader import DocumentLoad
from pmp.registry import DocumentRef
from pmp.staging import normalized_key, open_store

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BulkProcessorMissing(RuntimeError):
    """The ``pmp_bulk`` extension is not installed in this environment."""


def engine() -> Any:
    """The compiled module. A missing wheel is a deployment error, never a silent fallback."""
    try:
        import pmp_bulk
    except ImportError as exc:
        raise BulkProcessorMissing(
            "the Rust bulk processor (Python module pmp_bulk) is not installed: build it with "
            "scripts/setup.sh (maturin build of rust_operators/) and install the wheel, or set "
            "PMP_BULK_ENGINE=python to normalize with the Python reference instead"
        ) from exc
    return pmp_bulk


def enabled() -> bool:
    """``PMP_BULK_ENGINE=python`` turns the Rust path off (the Python normalizers are used)."""
    return os.environ.get("PMP_BULK_ENGINE", "rust").lower() != "python"


def supports(iso: str, dataset: str) -> bool:
    return iso == "ercot" and dataset in engine().datasets()


def micros(dt: datetime | None) -> int | None:
    """UTC microseconds, exactly (no float rounding)."""
    return None if dt is None else (dt - _EPOCH) // timedelta(microseconds=1)


def process_files(
    iso: str, dataset: str, paths: list[Path], out: Path, *, names: list[str] | None = None,
    published_at: list[datetime | None] | None = None, strict: bool = True, threads: int | None = None,
) -> dict[str, Any]:
    """Run the processor on local files; raises ``pmp_bulk.BulkProcessError`` on bad input."""
    bulk = engine()
    if not supports(iso, dataset):
        raise ValueError(f"the bulk processor does not handle {iso}.{dataset}; it handles ercot {bulk.datasets()}")
    stats = bulk.process(
        [str(p) for p in paths], dataset, str(out), names=names,
        published_at=[micros(p) for p in published_at] if published_at else None,
        strict=strict, threads=threads,
    )
    log.info(
        "%s.%s: %d file(s), %d rows, %d rejected, %.2fs (%.0f rows/s)", iso, dataset, stats["files"],
        stats["rows"], stats["rejected_rows"], stats["seconds"], stats["rows"] / max(stats["seconds"], 1e-9),
    )
    return stats


def normalize_manifest(manifest: dict[str, Any], *, strict: bool = True, threads: int | None = None) -> dict[str, Any] | None:
    """Stage manifest (raw keys) -> normalized Parquet in the staging store -> load manifest."""
    iso, dataset = manifest["key"].split(".", 1)
    spec = registry.get(iso, dataset)
    docs = manifest["docs"]
    if not docs:
        return None
    store = open_store()
    refs = [DocumentRef.from_dict(d["ref"]) for d in docs]
    with tempfile.TemporaryDirectory(prefix="pmp-bulk-") as tmp:
        paths = [Path(tmp) / f"{i:06d}.bin" for i in range(len(docs))]

        def pull(i: int) -> None:
            paths[i].write_bytes(store.get(docs[i]["raw_key"]))

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(pull, range(len(docs))))
        out = Path(tmp) / "normalized.parquet"
        stats = process_files(
            iso, dataset, paths, out, names=[d["name"] for d in docs],
            published_at=[r.published for r in refs], strict=strict, threads=threads,
        )
        days = sorted({r.market_day for r in refs})
        digest = hashlib.sha256("|".join(sorted(d["checksum"] for d in docs)).encode()).hexdigest()[:16]
        key = normalized_key(spec.iso, spec.dataset, date.fromisoformat(days[0]), f"{days[-1]}-{digest}")
        store.put(key, out.read_bytes(), immutable=False)
    loads = [
        DocumentLoad(
            source_id=ref.doc_id, source_name=source, checksum=d["checksum"], rows=rows,
            published_at=ref.published, market_day=date.fromisoformat(ref.market_day), source_url=ref.url,
            raw_uri=d["raw_uri"],
        ).to_dict()
        for ref, d, rows, source in zip(refs, docs, stats["rows_per_input"], stats["source_per_input"], strict=True)
    ]
    log.info("%s: bulk-normalized %d document(s) into %d rows -> %s", spec.key, len(docs), stats["rows"], key)
    return {"key": spec.key, "parquet_key": key, "rows": stats["rows"], "documents": loads,
            "engine": "rust", "stats": {k: stats[k] for k in ("files", "rows", "rejected_rows", "seconds")}}
