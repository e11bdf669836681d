"""Completeness checks: what a complete market day of a dataset looks like in the warehouse.

Used by the DAGs' ``check`` task, by ``pmp catalog`` and by the tests. Each dataset declares its
rule in the registry (``DatasetSpec.completeness``):

* ``intervals``: every interval of the local market day (23, 24 or 25 hours) is present, with one
  row per entity (``DatasetSpec.entity_columns``) per interval. Datasets holding several
  resolutions (e.g. hourly and 5-minute actual load) are checked per resolution; the main one
  (``interval_minutes``) must be there, and so must every ``required_resolutions`` entry.
  Entities are counted from what is present, so a source that never answered would go unseen:
  ``expected_entities`` names, per column, the values each resolution must hold (or how many
  distinct values at least).
* ``vintages``: forecasts. The day is the *issue* day; the vintages issued that day must all be
  present (``vintage_minutes`` or ``vintages_per_day``; at least one otherwise). With
  ``model_vintages`` each model is counted on its own (distinct issue times of its rows), since
  models may share issue times and one model's vintages must not hide another's absence.
* ``rows``: any rows at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg import sql

from pmp.registry import DatasetSpec
from pmp.timeutil import market_day_bounds


@dataclass
class Resolution:
    minutes: float
    intervals: int
    expected_intervals: int
    entities: int
    rows: int
    missing: list[str] = field(default_factory=list)  # UTC starts of absent intervals (first MISSING_LISTED)

    @property
    def complete(self) -> bool:
        return self.intervals == self.expected_intervals and self.rows == self.intervals * self.entities


@dataclass
class DayCheck:
    day: str
    hours: int
    rows: int
    resolutions: list[Resolution] = field(default_factory=list)
    vintages: int | None = None
    expected_vintages: int | None = None
    problems: list[str] = field(default_factory=list)
    in_progress: bool = False  # the market day has not ended yet
    # ``model_vintages`` datasets: model -> (vintages issued that day, expected); ``vintages`` /
    # ``expected_vintages`` are then the sums over the listed models
    vintages_by_model: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.rows > 0 and not self.problems

    @property
    def status(self) -> str:
        if self.complete:
            return "complete"
        if self.in_progress:
            return "in progress"
        return "INCOMPLETE: " + ("; ".join(self.problems) or "no rows")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["vintages_by_model"] = {m: list(v) for m, v in self.vintages_by_model.items()}  # JSON (XCom)
        d["complete"] = self.complete
        d["status"] = self.status
        return d

    def summary(self) -> str:
        if self.vintages is not None:
            detail = f"{self.vintages}/{self.expected_vintages} vintages"
            if self.vintages_by_model:
                detail += " (" + ", ".join(f"{m} {n}/{e}" for m, (n, e) in self.vintages_by_model.items()) + ")"
        else:
            detail = ", ".join(
                f"{r.intervals}/{r.expected_intervals}x{_minutes(r.minutes)} intervals, {r.entities} entities"
                for r in self.resolutions
            ) or "no intervals"
        return f"{self.day} {self.hours:>2} h  {detail}  {self.rows} rows"


def _minutes(m: float) -> str:
    return f"{int(m)}min" if m == int(m) else f"{m:g}min"


def where(spec: DatasetSpec) -> tuple[sql.Composable, list[Any]]:
    """``iso = … AND market = …`` (or ``kind = …``): the rows of one dataset in its table."""
    parts = [sql.SQL("iso = %s")]
    params: list[Any] = [spec.iso.upper()]
    for column, value in spec.filters.items():
        parts.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
        params.append(value)
    return sql.SQL(" AND ").join(parts), params


def entity_expr(spec: DatasetSpec) -> sql.Composable:
    cols = [sql.Identifier(c) for c in spec.entity_columns]
    return cols[0] if len(cols) == 1 else sql.SQL("({})").format(sql.SQL(", ").join(cols))


def expected_vintages(spec: DatasetSpec, hours: int) -> int:
    if spec.vintage_minutes:
        return hours * 60 // spec.vintage_minutes
    return spec.vintages_per_day or 1


def _check_model_vintages(conn: Any, spec: DatasetSpec, check: DayCheck, start: datetime, end: datetime) -> None:
    """Each model of ``spec.model_vintages``: the distinct issue times of its own rows."""
    cond, params = where(spec)
    q = sql.SQL(
        "SELECT model, count(DISTINCT forecast_issued_at), count(*) FROM {t} WHERE {c}"
        " AND forecast_issued_at >= %s AND forecast_issued_at < %s GROUP BY model"
    ).format(t=sql.Identifier(spec.table), c=cond)
    found = {model: (vintages, rows) for model, vintages, rows in conn.execute(q, [*params, start, end]).fetchall()}
    check.rows = sum(rows for _, rows in found.values())
    for model, rule in spec.model_vintages.items():
        got, want = found.get(model, (0, 0))[0], rule.expected(check.hours)
        check.vintages_by_model[model] = (got, want)
        if got < want:
            check.problems.append(f"{model}: {got}/{want} forecast vintages issued")
    check.vintages = sum(n for n, _ in check.vintages_by_model.values())
    check.expected_vintages = sum(e for _, e in check.vintages_by_model.values())


def _check_expected_entities(conn: Any, spec: DatasetSpec, check: DayCheck, start: datetime, end: datetime) -> None:
    """``spec.expected_entities``: per resolution present, the listed values of a column (or at
    least that many distinct values) are there."""
    cond, params = where(spec)
    for column, want in spec.expected_entities.items():
        values = list(want) if isinstance(want, tuple) else []
        q = sql.SQL(
            "SELECT extract(epoch FROM interval_end - interval_start) / 60, count(DISTINCT {col}),"
            " coalesce(array_agg(DISTINCT {col}) FILTER (WHERE {col} = ANY(%s::text[])), '{{}}')"
            " FROM {t} WHERE {c} AND interval_start >= %s AND interval_start < %s GROUP BY 1 ORDER BY 1"
        ).format(col=sql.Identifier(column), t=sql.Identifier(spec.table), c=cond)
        for minutes, distinct, present in conn.execute(q, [values, *params, start, end]).fetchall():
            label = _minutes(float(minutes))
            if isinstance(want, tuple):
                missing = [v for v in want if v not in present]
                if missing:
                    check.problems.append(f"{label} rows: no {column} {', '.join(missing)}")
            elif distinct < want:
                check.problems.append(f"{label} rows: {distinct} distinct {column}, expected at least {want}")


MISSING_LISTED = 24  # a day with more missing intervals lists the first ones and "..."


def _missing_starts(conn: Any, spec: DatasetSpec, start: datetime, end: datetime, minutes: float) -> list[str]:
    """Exactly which intervals of one resolution the day lacks (UTC starts, ``2024-11-03T06:45Z``):
    some ISOs simply skip an interval file now and then (SPP), and "287/288" alone does not say which."""
    cond, params = where(spec)
    q = sql.SQL(
        "SELECT g FROM generate_series(%s::timestamptz, %s::timestamptz - make_interval(secs => %s), "
        "make_interval(secs => %s)) g WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE {c} AND interval_start = g"
        " AND extract(epoch FROM interval_end - interval_start) = %s) ORDER BY g"
    ).format(t=sql.Identifier(spec.table), c=cond)
    step = minutes * 60
    rows = conn.execute(q, [start, end, step, step, *params, step]).fetchall()
    return [t.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ") for (t,) in rows]


def check_day(conn: Any, spec: DatasetSpec, day: date) -> DayCheck:
    start, end = market_day_bounds(day, spec.timezone)
    hours = int((end - start).total_seconds() // 3600)
    cond, params = where(spec)
    table = sql.Identifier(spec.table)
    if spec.completeness == "vintages":
        check = DayCheck(day.isoformat(), hours, 0, in_progress=end > datetime.now(UTC))
        if spec.model_vintages:
            _check_model_vintages(conn, spec, check, start, end)
            return check
        q = sql.SQL(
            "SELECT count(DISTINCT forecast_issued_at), count(*) FROM {t} WHERE {c}"
            " AND forecast_issued_at >= %s AND forecast_issued_at < %s"
        ).format(t=table, c=cond)
        vintages, rows = conn.execute(q, [*params, start, end]).fetchone()
        check.rows, check.vintages, check.expected_vintages = rows, vintages, expected_vintages(spec, hours)
        if vintages < check.expected_vintages:
            check.problems.append(f"{vintages}/{check.expected_vintages} forecast vintages issued")
        return check
    q = sql.SQL(
        "SELECT extract(epoch FROM interval_end - interval_start) / 60, count(DISTINCT interval_start),"
        " count(DISTINCT {e}), count(*) FROM {t} WHERE {c} AND interval_start >= %s AND interval_start < %s"
        " GROUP BY 1 ORDER BY 1"
    ).format(e=entity_expr(spec), t=table, c=cond)
    check = DayCheck(day.isoformat(), hours, 0, in_progress=end > datetime.now(UTC))
    for minutes, intervals, entities, rows in conn.execute(q, [*params, start, end]).fetchall():
        minutes = float(minutes)
        expected = int((end - start).total_seconds() // (minutes * 60))
        check.resolutions.append(Resolution(minutes, intervals, expected, entities, rows))
        check.rows += rows
    if spec.completeness == "intervals":
        present = {r.minutes for r in check.resolutions}
        if not {spec.interval_minutes, *spec.alt_interval_minutes} & present:
            check.problems.append(f"no {spec.interval_minutes}-minute intervals")
        for minutes in spec.required_resolutions:
            problem = f"no {minutes}-minute intervals"
            if minutes not in present and problem not in check.problems:
                check.problems.append(problem)
        for r in check.resolutions:
            if r.intervals != r.expected_intervals:
                r.missing = _missing_starts(conn, spec, start, end, r.minutes) if r.intervals < r.expected_intervals else []
                listed = ", ".join(r.missing[:MISSING_LISTED]) + (" ..." if len(r.missing) > MISSING_LISTED else "")
                check.problems.append(f"{r.intervals}/{r.expected_intervals} {_minutes(r.minutes)} intervals"
                                      + (f" (missing {listed})" if r.missing else ""))
            elif r.rows != r.intervals * r.entities:
                check.problems.append(
                    f"{r.rows} rows for {r.entities} entities x {r.intervals} {_minutes(r.minutes)} intervals"
                )
        if spec.expected_entities and check.rows:
            _check_expected_entities(conn, spec, check, start, end)
    return check


def check_days(conn: Any, spec: DatasetSpec, days: list[date]) -> list[DayCheck]:
    out = [check_day(conn, spec, d) for d in days]
    conn.commit()
    return out


def latest(conn: Any, spec: DatasetSpec) -> datetime | None:
    """The newest thing the dataset knows: interval end (or issue time, for forecasts)."""
    cond, params = where(spec)
    column = "forecast_issued_at" if spec.completeness == "vintages" else "interval_end"
    q = sql.SQL("SELECT max({}) FROM {} WHERE {}").format(sql.Identifier(column), sql.Identifier(spec.table), cond)
    value = conn.execute(q, params).fetchone()[0]
    conn.commit()
    return value


def document_problems(spec: DatasetSpec, table: Any, day: date) -> list[str]:
    """What a document that holds a whole market day lacks, from its own rows (a ``pyarrow.Table``
    of the standard schema), before anything is staged or loaded: the "intervals" rule of
    :func:`check_day` applied to one document. Every resolution it holds must have every interval of
    the 23/24/25-hour day, each with every entity the document names. A CSV has no end marker
    (NYISO, CAISO Outlook, ERCOT's zipped CSVs): a publication or download cut at a row boundary
    reads as a valid, shorter file, and only its missing intervals (or entities) give it away."""
    start, end = market_day_bounds(day, spec.timezone)
    columns = set(table.column_names)
    keep = [c for c in spec.filters if c in columns]
    filters = [table.column(c).to_pylist() for c in keep]
    wanted = [spec.filters[c] for c in keep]
    entity = [table.column(c).to_pylist() for c in spec.entity_columns if c in columns]
    by_minutes: dict[float, dict[datetime, set[tuple[Any, ...]]]] = {}
    starts, ends = table.column("interval_start").to_pylist(), table.column("interval_end").to_pylist()
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        if not start <= s < end or any(f[i] != w for f, w in zip(filters, wanted, strict=True)):
            continue
        by_minutes.setdefault((e - s).total_seconds() / 60, {}).setdefault(s, set()).add(tuple(c[i] for c in entity))
    if not by_minutes:
        return [f"no rows for the market day {day} ({start:%Y-%m-%dT%H:%MZ}..{end:%Y-%m-%dT%H:%MZ})"]
    problems = []
    for minutes, intervals in sorted(by_minutes.items()):
        step = timedelta(minutes=minutes)
        expected = int((end - start) / step)
        missing = [t for t in (start + step * k for k in range(expected)) if t not in intervals]
        if missing:
            listed = ", ".join(t.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ") for t in missing[:MISSING_LISTED])
            problems.append(f"{expected - len(missing)}/{expected} {_minutes(minutes)} intervals (missing "
                            f"{listed}{' ...' if len(missing) > MISSING_LISTED else ''})")
        everyone = set().union(*intervals.values())
        short = sorted(t for t, present in intervals.items() if len(present) < len(everyone))
        if short:
            problems.append(f"{len(short)} {_minutes(minutes)} interval(s) without all {len(everyone)} entities "
                            f"(first {short[0].astimezone(UTC):%Y-%m-%dT%H:%MZ})")
    return problems
