"""SPP real-time LMP history: is parsing the bottleneck? (decides whether SPP needs the Rust bulk path)

Builds a full-size ``RTBM-LMP-DAILY-SL`` roll-up from the real 5-minute sample (its 1 234 settlement
locations, 288 intervals of 2025-03-31: ~355 000 rows, ~38 MB) and times, alternating in each round:

* normalize: the SPP normalizer as the pipeline runs it (``normalize_payload``: the Arrow-kernel path
  ``lmp_vectorized``) -> rows of the ``lmp`` table;
* reference: the row-by-row reference normalizer (``_lmp``, what error messages come from), which was
  the only path before this benchmark showed it to be the slowest step of a history load;
* pyarrow:   ``pyarrow.csv.read_csv`` of the same bytes (a C++ parser that builds no timestamps, checks
  nothing: the floor a Rust bulk path could approach).

Medians over the rounds. The time to *download* the file bounds a history load anyway: the last line
also prints the megabytes, so rows/s can be compared with a link's MB/s.

    .venv/bin/python bench/spp_rt5m.py [--locations 1234] [--intervals 288] [--rounds 3]

Last line: ``spp_rt5m: normalize=<rows/s> reference=<rows/s> pyarrow=<rows/s> normalize/reference=<x> normalize/pyarrow=<x> mb=<size>``
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
SAMPLE = ROOT / "tests" / "samples" / "spp" / "rtbm_lmp_sl__electricitymaps_electricitymaps-contrib__RTBM-LMP-SL-202503310840.csv"


def build(locations: int, intervals: int) -> bytes:
    lines = SAMPLE.read_text().splitlines()
    rows = [line.split(",") for line in lines[1:1 + locations]]
    out = ["Interval, GMT Interval, Settlement Location Name, PNODE Name, LMP, MLC, MCC, MEC"]
    day = datetime(2025, 3, 31)  # CDT all day: local = GMT - 5 h
    for i in range(1, intervals + 1):
        end = day + timedelta(minutes=5 * i)
        stamps = f"{end:%m/%d/%Y %H:%M:%S},{end + timedelta(hours=5):%m/%d/%Y %H:%M:%S}"
        out += [f"{stamps},{','.join(r[2:])}" for r in rows]
    return ("\n".join(out) + "\n").encode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--locations", type=int, default=1234)
    ap.add_argument("--intervals", type=int, default=288)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import pyarrow.csv as pacsv

    from pmp.isos.spp.normalize import _lmp, normalize_payload, read_csv

    data = build(args.locations, args.intervals)
    times: dict[str, list[float]] = {"normalize": [], "reference": [], "pyarrow": []}
    n = 0
    for _ in range(args.rounds):
        t = time.perf_counter()
        n = normalize_payload("lmp_rt5m", "RTBM-LMP-DAILY-SL-20250331.csv", data).num_rows
        times["normalize"].append(time.perf_counter() - t)
        t = time.perf_counter()
        r = _lmp(read_csv("RTBM-LMP-DAILY-SL-20250331.csv", data), "RT5M", 5, "x.csv", None).num_rows
        times["reference"].append(time.perf_counter() - t)
        t = time.perf_counter()
        m = pacsv.read_csv(io.BytesIO(data)).num_rows
        times["pyarrow"].append(time.perf_counter() - t)
        assert m == n == r == args.locations * args.intervals, (m, n)
    rate = {k: n / statistics.median(v) for k, v in times.items()}
    print(f"{n} rows, " + ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in times.items())
          + f" (medians of {args.rounds})")
    print(f"spp_rt5m: normalize={rate['normalize']:.0f} reference={rate['reference']:.0f} pyarrow={rate['pyarrow']:.0f}"
          f" normalize/reference={rate['normalize'] / rate['reference']:.1f}"
          f" normalize/pyarrow={rate['normalize'] / rate['pyarrow']:.2f} mb={len(data) / 1e6:.1f}")


if __name__ == "__main__":
    main()
