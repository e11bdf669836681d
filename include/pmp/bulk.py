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
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pmp import payload, registry
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
    from pmp.validate import setting

    return setting("PMP_BULK_ENGINE") != "python"


def supports(iso: str, dataset: str) -> bool:
    return iso == "ercot" and dataset in engine().datasets()


def micros(dt: datetime | None) -> int | None:
    """UTC microseconds, exactly (no float rounding)."""
    return None if dt is None else (dt - _EPOCH) // timedelta(microseconds=1)


def zip_limits() -> dict[str, int]:
    """The :mod:`pmp.payload` zip limits, as the processor's ``limits`` argument."""
    return {"member_bytes": payload.MAX_MEMBER_BYTES, "total_bytes": payload.MAX_TOTAL_BYTES,
            "ratio": payload.MAX_RATIO, "ratio_min_bytes": payload.RATIO_MIN_BYTES, "depth": payload.MAX_DEPTH}


def process_files(
    iso: str, dataset: str, paths: list[Path], out: Path, *, names: list[str] | None = None,
    published_at: list[datetime | None] | None = None, strict: bool = True, threads: int | None = None,
) -> dict[str, Any]:
    """Run the processor on local files; raises ``pmp_bulk.BulkProcessError`` on bad input.

    The processor holds every zip to the decompression limits of :mod:`pmp.payload` (their one
    home), passed in here on every call."""
    bulk = engine()
    if not supports(iso, dataset):
        raise ValueError(f"the bulk processor does not handle {iso}.{dataset}; it handles ercot {bulk.datasets()}")
    stats = bulk.process(
        [str(p) for p in paths], dataset, str(out), names=names,
        published_at=[micros(p) for p in published_at] if published_at else None,
        strict=strict, threads=threads, limits=zip_limits(),
    )
    log.info(
        "%s.%s: %d file(s), %d rows, %d rejected, %.2fs (%.0f rows/s)", iso, dataset, stats["files"],
        stats["rows"], stats["rejected_rows"], stats["seconds"], stats["rows"] / max(stats["seconds"], 1e-9),
    )
    return stats


def normalize_manifest(manifest: dict[str, Any], *, strict: bool = True, threads: int | None = None) -> dict[str, Any] | None:
    """Stage manifest (raw keys) -> normalized Parquet in the staging store -> load manifest.

    Each document goes to the engine its payload type needs: CSVs, zips and zips of zips to the
    Rust processor; xlsx workbooks (ERCOT's annual hub and load-zone files, a zip of one xlsx)
    to the Python normalizer, which the processor does not read. A batch of both is combined
    into one Parquet file (one row per key, the latest publication winning, as in
    :func:`pmp.pipeline.normalize`)."""
    from pmp.isos.ercot.xlsx import is_workbook

    iso, dataset = manifest["key"].split(".", 1)
    spec = registry.get(iso, dataset)
    docs = manifest["docs"]
    if not docs:
        return None
    store = open_store()
    refs = [DocumentRef.from_dict(d["ref"]) for d in docs]
    with tempfile.TemporaryDirectory(prefix="pmp-bulk-") as tmp:
        paths = [Path(tmp) / f"{i:06d}.bin" for i in range(len(docs))]
        workbook = [False] * len(docs)

        def pull(i: int) -> None:
            data = store.get(docs[i]["raw_key"])
            workbook[i] = is_workbook(data)
            paths[i].write_bytes(data)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(pull, range(len(docs))))
        in_rust = [i for i in range(len(docs)) if not workbook[i]]
        in_python = [i for i in range(len(docs)) if workbook[i]]
        rows: list[int] = [0] * len(docs)
        sources: list[str] = [d["name"] for d in docs]
        out = Path(tmp) / "normalized.parquet"
        stats: dict[str, Any] = {"files": 0, "rows": 0, "rejected_rows": 0, "seconds": 0.0}
        if in_rust:
            stats = process_files(
                iso, dataset, [paths[i] for i in in_rust], out, names=[docs[i]["name"] for i in in_rust],
                published_at=[refs[i].published for i in in_rust], strict=strict, threads=threads,
            )
            for i, n, source in zip(in_rust, stats["rows_per_input"], stats["source_per_input"], strict=True):
                rows[i], sources[i] = n, source
        if in_python:
            log.info("%s: %d of %d document(s) are xlsx workbooks (%s), which the Rust processor does not read: "
                     "normalizing them with the Python normalizer", spec.key, len(in_python), len(docs),
                     ", ".join(docs[i]["name"] for i in in_python))
            stats = _with_python(spec, docs, refs, paths, in_python, out if in_rust else None, out, rows, sources, stats)
        days = sorted({r.market_day for r in refs})
        digest = hashlib.sha256("|".join(sorted(d["checksum"] for d in docs)).encode()).hexdigest()[:16]
        key = normalized_key(spec.iso, spec.dataset, date.fromisoformat(days[0]), f"{days[-1]}-{digest}")
        store.put(key, out.read_bytes(), immutable=False)
    from pmp import lineage

    lineage.report([d["raw_uri"] for d in docs], [store.uri(key)])
    loads = [
        DocumentLoad(
            source_id=ref.doc_id, source_name=source, checksum=d["checksum"], rows=n,
            published_at=ref.published, market_day=date.fromisoformat(ref.market_day), source_url=ref.url,
            raw_uri=d["raw_uri"],
        ).to_dict()
        for ref, d, n, source in zip(refs, docs, rows, sources, strict=True)
    ]
    engines = "+".join(e for e, used in (("rust", in_rust), ("python", in_python)) if used)
    log.info("%s: bulk-normalized %d document(s) into %d rows (%s) -> %s", spec.key, len(docs), stats["rows"],
             engines, key)
    return {"key": spec.key, "parquet_key": key, "rows": stats["rows"], "documents": loads,
            "engine": engines, "stats": {k: stats[k] for k in ("files", "rows", "rejected_rows", "seconds")}}


def _with_python(
    spec: registry.DatasetSpec, docs: list[dict[str, Any]], refs: list[DocumentRef], paths: list[Path],
    which: list[int], rust_out: Path | None, out: Path, rows: list[int], sources: list[str], stats: dict[str, Any],
) -> dict[str, Any]:
    """Normalize documents ``which`` with the ISO's Python normalizer and combine them with the
    processor's output (if any) into ``out``."""
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pmp.loader import dedupe_latest
    from pmp.schema import conform

    started = time.perf_counter()
    adapter = registry.adapter(spec.iso)
    tables = [conform(pq.read_table(rust_out), spec.schema)] if rust_out is not None else []
    for i in which:
        table = conform(adapter.normalize(spec, docs[i]["name"], paths[i].read_bytes(), published_at=refs[i].published),
                        spec.schema)
        names = table.column("source").unique().to_pylist() if table.num_rows else []
        rows[i], sources[i] = table.num_rows, (names[0] if len(names) == 1 else docs[i]["name"])
        tables.append(table)
    table = dedupe_latest(pa.concat_tables(tables), spec.schema.key)
    pq.write_table(table, out, compression="zstd")
    return {"files": stats["files"] + len(which), "rows": table.num_rows, "rejected_rows": stats["rejected_rows"],
            "seconds": stats["seconds"] + time.perf_counter() - started}
