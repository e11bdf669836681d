"""``pmp``: the command line for the pipeline (the same code the DAG tasks run)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pmp import validate
from pmp.validate import ArgumentParser, day_argument


def _setup_env(use_settings: bool = True) -> None:
    """Outside Airflow, take connections from airflow_settings.yaml unless already in the env."""
    if not use_settings:
        return
    from pmp import airflow_settings

    for key, value in airflow_settings.env().items():
        os.environ.setdefault(key, value)


def cmd_db(args: argparse.Namespace) -> int:
    from pmp import db

    with db.connect() as conn:
        report = db.migrate(conn)
    for name in report.applied:
        print(f"applied  {name}")
    for name in report.skipped:
        print(f"current  {name}")
    print(report.timescale)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    # The simulator is a development tool: imported only when it runs (and parses its own options),
    # never by the production commands or the DAGs (tests/test_packaging.py).
    from pmp.simulator import server

    ap = ArgumentParser(prog="pmp simulate", description="serve the ISO simulator on loopback")
    server.add_arguments(ap)
    return server.run(ap.parse_args(args.simulator_args))


_day = day_argument


def _instant(value: str) -> datetime:
    """An ISO 8601 time with a UTC offset (``2024-11-05T10:41:37Z``, ``…-05:00``) -> UTC."""
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    if t.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no UTC offset (add Z or e.g. -05:00)")
    return t.astimezone(UTC)


def cmd_download(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pmp import pipeline, registry
    from pmp.timeutil import market_day_bounds

    spec = registry.get(args.iso, args.dataset)
    days = validate.day_range(args.start, args.end, end_exclusive=True, first_day=spec.first_date,
                              today=validate.market_today(spec), what=spec.key)
    validate.preflight(spec)  # settings and the ISO's connection, before anything is fetched
    failures = 0
    with tqdm(total=len(days), unit="day", desc=spec.key, disable=True if args.quiet else None) as bar:
        for day in days:
            start, end = market_day_bounds(day, spec.timezone)
            try:
                result = pipeline.run_window(spec.key, start.isoformat(), end.isoformat(), reload=args.reload)
                bar.set_postfix_str(f"{day} docs={result['documents']} rows={result['loaded']['rows']}")
            except validate.InputError:  # bad configuration: the next day would fail the same way
                raise
            except Exception as exc:  # report and continue with the next day
                failures += 1
                tqdm.write(f"{spec.key} {day}: FAILED: {exc}")
            bar.update(1)
    return 1 if failures else 0


def cmd_normalize(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pmp import registry
    from pmp.loader import dedupe_latest
    from pmp.payload import PayloadError

    spec = registry.get(args.iso, args.dataset)
    adapter = registry.adapter(spec.iso)
    validate.output_file(args.out, "--out")
    tables = []
    for path in args.files:
        data = validate.input_file(path)
        try:
            tables.append(adapter.normalize(spec, Path(path).name, data, published_at=args.published_at))
        except (ValueError, PayloadError) as exc:
            raise validate.InputError(str(exc)) from exc
    table = dedupe_latest(pa.concat_tables(tables), spec.schema.key) if tables else spec.schema.empty()
    pq.write_table(table, args.out, compression="zstd")
    print(f"{args.out}: {table.num_rows} rows, columns {', '.join(table.column_names)}")
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from pmp import catalog, db

    specs = validate.catalog_selection(args.iso, args.dataset)
    if (args.start or args.end) and not args.days:
        raise validate.InputError("--start/--end choose the market days shown by --days: add --days")
    if args.start and args.end:
        validate.day_range(args.start, args.end, end_exclusive=True)
    if args.record and not args.days:
        raise validate.InputError("--record keeps the checks of --days for the UI's coverage view: add --days")
    with db.connect_ready() if args.record else db.connect() as conn:
        # --end is exclusive, as for download and the read API; catalog.entry takes the last day shown
        last = args.end - timedelta(days=1) if args.end else None
        rows = [catalog.entry(conn, spec, with_days=args.days, start=args.start, end=last) for spec in specs]
        if args.record:
            from pmp import coverage

            for spec, row in zip(specs, rows, strict=True):
                coverage.record(conn, spec, row.days)
    print(catalog.render(rows))
    return 0


def cmd_plan_history(args: argparse.Namespace) -> int:
    from pmp import plan

    specs = plan.daily_specs(args.iso)
    result_path = Path(args.measured) if args.measured else plan.RESULT_FILE
    result = plan.load_result(result_path)
    warehouse: dict = {}
    if not args.no_warehouse:
        from pmp import db

        try:
            with db.connect() as conn:
                warehouse = plan.measured_from_warehouse(conn)
        except Exception as exc:  # a plan without the warehouse still shows what the benchmark measured
            print(f"(warehouse not read: {str(exc).splitlines()[0]})", file=sys.stderr)
    figures = plan.measured(warehouse, result, result_name=result_path.name)
    today = args.today or datetime.now(UTC).date()
    print(plan.render(plan.plan(specs, args.start, today, figures), figures, workers=args.workers))
    return 0


def cmd_airflow_settings(args: argparse.Namespace) -> int:
    from pmp import airflow_settings
    from pmp.checkconfig import settings_file_problems

    problems = settings_file_problems(airflow_settings.SETTINGS_FILE)[0]  # nothing imported from a bad file
    if problems:
        more = f" (and {len(problems) - 1} more: pmp check-config lists them)" if len(problems) > 1 else ""
        raise validate.InputError(problems[0] + more)
    if args.action == "env":
        print(airflow_settings.shell_exports())
    else:
        airflow_settings.import_into_airflow()
        print("pools and connections imported from airflow_settings.yaml")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="pmp", description="Power Market Pipeline",
                       epilog="Bad input is one line on stderr and exit status 2; other errors exit 1 (-v: traceback).")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging; tracebacks of errors")
    sub = p.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    d = sub.add_parser("db", help="warehouse database")
    d.add_argument("action", choices=["migrate"])
    d.set_defaults(func=cmd_db)

    # every option after `simulate` goes to the simulator's own parser (no prefix chars of its own here)
    s = sub.add_parser("simulate", help="serve the ISO simulator on loopback (pmp simulate --help)",
                       add_help=False, prefix_chars="\0")
    s.add_argument("simulator_args", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_simulate)

    dl = sub.add_parser("download", help="fetch, stage, normalize and load market days without a scheduler")
    dl.add_argument("--iso", required=True)
    dl.add_argument("--dataset", required=True)
    dl.add_argument("--start", required=True, type=_day, help="first market day (YYYY-MM-DD)")
    dl.add_argument("--end", required=True, type=_day,
                    help="market day after the last one (exclusive, like the read API and gridstatus)")
    dl.add_argument("--reload", action="store_true", help="re-fetch documents already loaded")
    dl.add_argument("--quiet", action="store_true")
    dl.set_defaults(func=cmd_download)

    n = sub.add_parser("normalize", help="raw payload(s) -> standard columns in a Parquet file")
    n.add_argument("--iso", required=True)
    n.add_argument("--dataset", required=True)
    n.add_argument("files", nargs="+")
    n.add_argument("--out", required=True)
    n.add_argument("--published-at", type=_instant, metavar="ISO8601",
                   help="publication (issue) time of the files, ISO 8601 with a UTC offset (e.g. "
                        "2024-11-05T10:41:37Z), passed to the ISO's normalizer as published_at: needed for "
                        "files that carry none, e.g. NYISO isolf forecasts; see the ISO's README for which "
                        "times a file carries itself")
    n.set_defaults(func=cmd_normalize)

    c = sub.add_parser("catalog", help="first/last interval, rows and missing intervals per dataset")
    c.add_argument("--iso")
    c.add_argument("--dataset", help="one dataset (of --iso, or of every ISO that has it)")
    c.add_argument("--days", action="store_true", help="one line per market day")
    c.add_argument("--start", type=_day, help="with --days: first market day shown")
    c.add_argument("--end", type=_day, help="with --days: market day after the last one shown (exclusive)")
    c.add_argument("--record", action="store_true",
                   help="with --days: keep the checks for the Airflow UI's coverage view (coverage_days)")
    c.set_defaults(func=cmd_catalog)

    from pmp.cli_read import add_read_commands

    add_read_commands(sub)  # query, plot, lake (pmp.cli_read)

    ph = sub.add_parser("plan-history", help="runs, requests, rows and hours a full catch-up of history takes")
    ph.add_argument("--iso", action="append", help="one ISO (repeat for more; default every ISO)")
    ph.add_argument("--start", type=_day, default=validate.day_argument("2019-01-01"),
                    help="first market day (default 2019-01-01; never before a dataset's own first day)")
    ph.add_argument("--today", type=_day, help=argparse.SUPPRESS)  # tests: a fixed 'today'
    ph.add_argument("--measured", metavar="FILE",
                    help="catch-up benchmark result (default bench/results/catchup.json)")
    ph.add_argument("--no-warehouse", action="store_true", help="do not read ingest_log from the warehouse")
    ph.add_argument("--workers", type=int, default=1, help="machines like this one working in parallel")
    ph.set_defaults(func=cmd_plan_history)

    a = sub.add_parser("airflow-settings", help="airflow_settings.yaml: print env exports or import")
    a.add_argument("action", choices=["env", "import"])
    a.set_defaults(func=cmd_airflow_settings)

    from pmp.checkconfig import add_parser as add_check_config

    add_check_config(sub)
    for command in sub.choices.values():  # -v after the command as well as before it
        if command.prefix_chars == "-":
            command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                 help="debug logging; tracebacks of errors")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if args.command in ("db", "simulate") else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command not in ("simulate", "normalize", "airflow-settings", "check-config"):
            _setup_env()
        return int(args.func(args) or 0)
    except Exception as exc:  # one line on stderr, never a traceback unless -v (pmp.validate)
        return validate.report_error(exc, f"pmp {args.command}", verbose=args.verbose)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

