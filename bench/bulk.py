"""Bulk-processing benchmark: the Rust processor vs a pandas loop vs a polars loop, same archive, same run.

Generates an ERCOT-shaped monthly archive: 30 days (November 2024, so the 25-hour fall-back day is
in it) x 96 nested zips (one 15-minute NP6-905-CD document each, as the Public API bulk download
delivers them) x ~1,000 quoted rows, ~2.9 M rows. Then, alternating the methods in each round (the
machines are noisy), it times:

* rust:   ``pmp_bulk.process`` on the archive (all cores);
* pandas: a plain loop: read each inner CSV with ``pandas.read_csv``, build UTC timestamps from
  (date, hour ending, interval, DST flag), concatenate, write Parquet;
* polars: the same loop with ``polars.read_csv`` and polars expressions.

All three read the archive from disk and write a Parquet file; row counts and the time range are
checked to agree. Medians over the rounds.

    .venv/bin/python bench/bulk.py [--days 30] [--nodes 980] [--rounds 2]

Last line: ``bulk: rust=<rows/s> pandas=<rows/s> polars=<rows/s> rust/pandas=<x> rust/polars=<x>``
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

CT = ZoneInfo("America/Chicago")
HEADER = '"DeliveryDate","DeliveryHour","DeliveryInterval","SettlementPointName","SettlementPointType",' \
         '"SettlementPointPrice","DSTFlag"\n'


def make_archive(path: Path, first: date, days: int, nodes: int) -> int:
    """The monthly archive; returns its row count."""
    # sorted by settlement point name across types, as ERCOT lists them (the real sample has
    # HB_BUSAVG SH, HB_HOUSTON HU, HB_HUBAVG AH in name order; LZ and LZEW copies side by side)
    names = sorted([(f"NODE_{i:04d}_RN", "RN") for i in range(nodes)] + [
        (z, t) for z in ("LZ_HOUSTON", "LZ_NORTH", "LZ_SOUTH", "LZ_WEST") for t in ("LZ", "LZEW")])
    rows = 0
    doc_id = 900_000_000
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as month:
        for d in range(days):
            day = first + timedelta(days=d)
            start = datetime(day.year, day.month, day.day, tzinfo=CT).astimezone(UTC)
            end = datetime.combine(day + timedelta(days=1), datetime.min.time(), CT).astimezone(UTC)
            daily = io.BytesIO()
            with zipfile.ZipFile(daily, "w", zipfile.ZIP_STORED) as bundle:
                t = start
                while t < end:
                    local = t.astimezone(CT)
                    hour_start = t - timedelta(minutes=local.minute)
                    ls, le = hour_start.astimezone(CT), (hour_start + timedelta(hours=1)).astimezone(CT)
                    he = ls.hour + (2 if (le.hour - ls.hour) % 24 == 2 else 1)
                    flag = "Y" if ls.fold == 1 and ls.utcoffset() != ls.replace(fold=0).utcoffset() else "N"
                    interval = local.minute // 15 + 1
                    lines = [HEADER]
                    for i, (name, typ) in enumerate(names):
                        # hashed, so the files compress like real ones (prices are not a pattern)
                        h = (i * 2654435761 + int(t.timestamp()) * 40503) % 4294967291
                        price = round(15 + (h % 600_000) / 10_000 + (h % 7) * 3.5, 2)
                        lines.append(f'"{local:%m/%d/%Y}","{he}","{interval}","{name}","{typ}","{price:g}","{flag}"\n')
                    csv = "".join(lines).encode()
                    posted = (t + timedelta(minutes=17)).astimezone(CT)
                    stamp = (t + timedelta(minutes=15)).astimezone(CT)
                    member = (f"cdr.00012301.0000000000000000.{posted:%Y%m%d}.{posted:%H%M%S}."
                              f"SPPHLZNP6905_{stamp:%Y%m%d}_{stamp:%H%M}.csv")
                    inner = io.BytesIO()
                    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as doc:
                        doc.writestr(member, csv)
                    bundle.writestr(f"{doc_id}.zip", inner.getvalue())
                    doc_id += 1
                    rows += len(names)
                    t += timedelta(minutes=15)
            month.writestr(f"NP6-905-CD_{day:%Y%m%d}.zip", daily.getvalue())
    return rows


def inner_csvs(path: Path):
    """Every CSV inside the nested zips (what both Python loops iterate over)."""
    def walk(zf: zipfile.ZipFile):
        for info in zf.infolist():
            data = zf.read(info)
            if data[:4] == b"PK\x03\x04":
                yield from walk(zipfile.ZipFile(io.BytesIO(data)))
            elif info.filename.endswith(".csv"):
                yield info.filename, data

    with zipfile.ZipFile(path) as zf:
        yield from walk(zf)


def summary(out: Path) -> tuple[int, datetime, datetime, float]:
    """Row count, first/last interval start and price sum of a result file (outside the timing)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(out, columns=["interval_start", "lmp"])
    bounds = pc.min_max(table.column("interval_start")).as_py()
    return table.num_rows, bounds["min"], bounds["max"], round(pc.sum(table.column("lmp")).as_py(), 4)


def run_rust(archive: Path, out: Path) -> None:
    import pmp_bulk

    pmp_bulk.process([str(archive)], "lmp_rt15m", str(out))


def run_pandas(archive: Path, out: Path) -> None:
    import pandas as pd

    frames = []
    for name, data in inner_csvs(archive):
        df = pd.read_csv(io.BytesIO(data), dtype={"SettlementPointName": str, "SettlementPointType": str,
                                                  "DeliveryDate": str, "DSTFlag": str})
        local = (pd.to_datetime(df["DeliveryDate"], format="%m/%d/%Y")
                 + pd.to_timedelta(df["DeliveryHour"] - 1, unit="h")
                 + pd.to_timedelta((df["DeliveryInterval"] - 1) * 15, unit="m"))
        start = local.dt.tz_localize("America/Chicago", ambiguous=(df["DSTFlag"] == "N").to_numpy(),
                                     nonexistent="shift_backward").dt.tz_convert("UTC")
        ew = df["SettlementPointType"].str.endswith("EW")
        frames.append(pd.DataFrame({
            "interval_start": start, "interval_end": start + pd.Timedelta(minutes=15), "iso": "ERCOT",
            "market": "RT15M", "location": df["SettlementPointName"].where(~ew, df["SettlementPointName"] + "_EW"),
            "location_type": df["SettlementPointType"], "lmp": df["SettlementPointPrice"].astype("float64"),
            "source": name,
        }))
    pd.concat(frames, ignore_index=True).to_parquet(out, index=False)


def run_polars(archive: Path, out: Path) -> None:
    import polars as pl

    frames = []
    for name, data in inner_csvs(archive):
        df = pl.read_csv(data, schema_overrides={"DeliveryDate": pl.String, "SettlementPointName": pl.String,
                                                 "SettlementPointType": pl.String, "DSTFlag": pl.String})
        local = (pl.col("DeliveryDate").str.strptime(pl.Datetime("us"), "%m/%d/%Y")
                 + pl.duration(hours=pl.col("DeliveryHour") - 1, minutes=(pl.col("DeliveryInterval") - 1) * 15))
        start = local.dt.replace_time_zone(
            "America/Chicago", ambiguous=pl.when(pl.col("DSTFlag") == "Y").then(pl.lit("latest"))
            .otherwise(pl.lit("earliest")), non_existent="null").dt.convert_time_zone("UTC")
        ew = pl.col("SettlementPointType").str.ends_with("EW")
        frames.append(df.select(
            start.alias("interval_start"), (start + pl.duration(minutes=15)).alias("interval_end"),
            pl.lit("ERCOT").alias("iso"), pl.lit("RT15M").alias("market"),
            pl.when(ew).then(pl.col("SettlementPointName") + "_EW").otherwise(pl.col("SettlementPointName"))
            .alias("location"),
            pl.col("SettlementPointType").alias("location_type"),
            pl.col("SettlementPointPrice").cast(pl.Float64).alias("lmp"), pl.lit(name).alias("source"),
        ))
    pl.concat(frames).write_parquet(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--nodes", type=int, default=1000 - 8, help="resource nodes per file (+8 load-zone rows)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pmp-bench-bulk-") as tmp:
        archive = Path(tmp) / "NP6-905-CD_202411.zip"
        t0 = time.perf_counter()
        rows = make_archive(archive, date(2024, 11, 1), args.days, args.nodes)
        print(f"archive: {args.days} days x 96 nested zips, {rows} rows, {archive.stat().st_size / 1e6:.0f} MB "
              f"(generated in {time.perf_counter() - t0:.1f}s)", flush=True)
        methods = {"rust": run_rust, "pandas": run_pandas, "polars": run_polars}
        times: dict[str, list[float]] = {m: [] for m in methods}
        results = {}
        for r in range(args.rounds):
            for name, fn in methods.items():
                out = Path(tmp) / f"{name}.parquet"
                t0 = time.perf_counter()
                fn(archive, out)
                times[name].append(time.perf_counter() - t0)
                results[name] = summary(out)
                out.unlink()
            print(f"round {r + 1}: " + "  ".join(f"{m} {times[m][-1]:.2f}s" for m in methods), flush=True)
        for name, result in results.items():  # same rows, same UTC range, same prices from every method
            assert result[0] == rows, f"{name} produced {result[0]} rows, expected {rows}"
            assert result == results["rust"], f"{name}: {result} != rust {results['rust']}"
        rate = {m: rows / statistics.median(t) for m, t in times.items()}
    print(f"bulk: rust={rate['rust']:.0f} pandas={rate['pandas']:.0f} polars={rate['polars']:.0f} "
          f"rust/pandas={rate['rust'] / rate['pandas']:.1f} rust/polars={rate['rust'] / rate['polars']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
