"""``pmp query``, ``pmp plot`` and ``pmp lake``: reading the warehouse back out (see :mod:`pmp.read`,
:mod:`pmp.charts`, :mod:`pmp.lake`). Registered by :func:`pmp.cli.build_parser`."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from pmp import validate
from pmp.validate import InputError, day_argument

# pmp query WHAT -> (Warehouse method, the options that apply to it besides the common ones)
QUERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "lmp": ("lmp", ("market", "locations", "location_type")),
    "as": ("ancillary_services", ("market", "products", "regions")),
    "load": ("load", ("areas",)),
    "load-forecast": ("load_forecast", ("areas", "models", "as_of", "vintages")),
    "fuel-mix": ("fuel_mix", ("fuels", "wide")),
}
SPECIFIC = ("market", "locations", "location_type", "products", "regions", "areas", "models", "as_of", "vintages",
            "fuels", "wide")


def progress(total: int, desc: str, *, quiet: bool = False, unit: str = "day") -> Any:
    """A tqdm bar on stderr, off when stderr is not a terminal (or with ``--quiet``)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=True if quiet else None, leave=False)


_day = day_argument


def cmd_query(args: argparse.Namespace) -> int:
    from pmp.read import Warehouse

    method, allowed = QUERIES[args.what]
    kwargs: dict[str, Any] = {}
    for name in SPECIFIC:
        value = getattr(args, name)
        if value in (None, False):
            continue
        if name not in allowed:
            applies = ", ".join("--" + a.replace("_", "-") for a in allowed)
            raise InputError(f"--{name.replace('_', '-')} does not apply to 'pmp query {args.what}' "
                             f"(its options: {applies})")
        kwargs[name] = value
    for name in ("interval_minutes", "resample"):
        if getattr(args, name):
            kwargs[name] = getattr(args, name)
    if args.resample:
        kwargs["agg"] = args.agg
    if args.local_time:
        kwargs["local_time"] = True
    if args.format == "parquet" and not args.out:
        raise InputError("--format parquet needs --out FILE")
    if args.out:
        validate.output_file(args.out, "--out")
    # libraries log to stdout (Airflow's connection and S3 hooks): keep it for the data
    with contextlib.redirect_stdout(sys.stderr):
        df = getattr(Warehouse(args.source), method)(args.iso, args.start, args.end, **kwargs)
    if args.format == "parquet":
        df.to_parquet(args.out, index=False)
    elif args.format == "csv":
        text = df.to_csv(index=False)
        if args.out:
            Path(args.out).write_text(text)
        else:
            sys.stdout.write(text)
    else:
        text = df.to_string(index=False) if len(df) else "(no rows)"
        if args.out:
            Path(args.out).write_text(text + "\n")
        else:
            print(text)
    if args.out:
        print(f"{args.out}: {len(df)} rows, columns {', '.join(map(str, df.columns))}", file=sys.stderr)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from pmp import charts

    validate.output_file(args.out, "--out")
    if args.chart == "price-heatmap":
        fig = charts.price_heatmap(args.iso, args.location, args.start, args.end, market=args.market,
                                   source=args.source)
    elif args.chart == "load-forecast":
        fig = charts.load_vs_forecast(args.iso, args.start, args.end, area=args.area, as_of=args.as_of,
                                      model=args.model, source=args.source)
    else:
        fig = charts.coverage(args.iso, args.start, args.end, quiet=args.quiet)
    path = charts.save(fig, args.out)
    print(f"{path}")
    return 0


def cmd_lake(args: argparse.Namespace) -> int:
    from pmp import lake

    specs = validate.catalog_selection(args.iso, args.dataset)
    days = validate.day_range(args.start, args.end, end_exclusive=True)
    if args.lake_url:
        validate.option_value("--lake-url", args.lake_url, validate.STAGING)
    validate.require_settings()
    store = lake.open_lake(args.lake_url)
    total = 0
    with progress(len(days) * len(specs), "lake compact", quiet=args.quiet) as bar:
        for spec in specs:
            written = lake.compact_days(spec, days, store=store, progress=bar)
            rows = sum(written.values())
            total += rows
            files = sum(1 for n in written.values() if n)
            bar.write(f"{spec.key}: {files} day file(s), {rows} rows")
    print(f"{store.url}: {total} rows in {len(specs)} dataset(s), {args.start} .. {args.end} (exclusive)")
    return 0


def _common_window(p: argparse.ArgumentParser, *, dates_only: bool = False) -> None:
    if dates_only:
        p.add_argument("--start", required=True, type=_day, help="first market day (YYYY-MM-DD)")
        p.add_argument("--end", required=True, type=_day, help="market day after the last one (exclusive)")
    else:
        p.add_argument("--start", default="today",
                       help="YYYY-MM-DD (local midnight), ISO 8601 time, 'today' or 'latest' (default today)")
        p.add_argument("--end", help="exclusive end, same forms (default: the end of start's market day)")


def add_read_commands(sub: Any) -> None:
    q = sub.add_parser("query", help="read the warehouse (or the lake) back out as CSV, Parquet or a table")
    q.add_argument("what", choices=sorted(QUERIES))
    q.add_argument("--iso", required=True)
    _common_window(q)
    q.add_argument("--market", help="DAM, RT5M, RT15M, RT60M, HASP (or gridstatus names); comma-separated")
    q.add_argument("--locations", help="comma-separated location names (default all)")
    q.add_argument("--location-type", help="comma-separated location types, as the ISO publishes them")
    q.add_argument("--products", help="comma-separated ancillary service products")
    q.add_argument("--regions", help="comma-separated ancillary service regions")
    q.add_argument("--areas", help="comma-separated load areas (SYSTEM = the ISO total)")
    q.add_argument("--models", help="comma-separated forecast models")
    q.add_argument("--fuels", help="comma-separated fuels")
    q.add_argument("--as-of", help="load-forecast: the newest vintage issued at or before this time")
    q.add_argument("--vintages", choices=["latest", "all"], help="load-forecast: newest vintage (default) or all")
    q.add_argument("--wide", action="store_true", help="fuel-mix: one column per fuel")
    q.add_argument("--interval-minutes", type=int, help="only rows of this resolution")
    q.add_argument("--resample", help="e.g. 1h, 15min, 1D (local market days)")
    q.add_argument("--agg", default="mean", choices=["mean", "sum", "min", "max", "first", "last"])
    q.add_argument("--local-time", action="store_true", help="add interval_start_local (ISO market time)")
    q.add_argument("--source", choices=["db", "lake"], default="db")
    q.add_argument("--format", choices=["csv", "parquet", "table"], default="csv")
    q.add_argument("--out", help="write to this file (default stdout; parquet needs a file)")
    q.set_defaults(func=cmd_query)

    pl = sub.add_parser("plot", help="charts: price heat map, load vs forecast, coverage heat map (PNG or HTML)")
    pl.add_argument("chart", choices=["price-heatmap", "load-forecast", "coverage"])
    pl.add_argument("--iso", required=True)
    pl.add_argument("--start", required=True, help="YYYY-MM-DD or ISO 8601 time")
    pl.add_argument("--end", required=True, help="exclusive end")
    pl.add_argument("--market", default="DAM", help="price-heatmap: market (default DAM)")
    pl.add_argument("--location", help="price-heatmap: the location")
    pl.add_argument("--area", default="SYSTEM", help="load-forecast: load area (default SYSTEM)")
    pl.add_argument("--model", help="load-forecast: forecast model (ERCOT publishes several)")
    pl.add_argument("--as-of", help="load-forecast: the vintage newest at this time (default: the newest)")
    pl.add_argument("--source", choices=["db", "lake"], default="db")
    pl.add_argument("--out", required=True, help="file.png (matplotlib) or file.html (plotly)")
    pl.add_argument("--quiet", action="store_true")
    pl.set_defaults(func=cmd_plot)

    lk = sub.add_parser("lake", help="the Parquet lake: (re)build day files from the warehouse")
    lk.add_argument("action", choices=["compact"])
    lk.add_argument("--iso", required=True)
    lk.add_argument("--dataset", help="one dataset (default: every dataset of the ISO)")
    _common_window(lk, dates_only=True)
    lk.add_argument("--lake-url", help="default PMP_LAKE_URL or <PMP_STAGING_URL>/lake/")
    lk.add_argument("--quiet", action="store_true")
    lk.set_defaults(func=cmd_lake)
