-- What the checks found, kept: one row per ISO dataset and local market day, written by every daily
-- check (pmp.coverage.record, the same DayCheck `pmp catalog` prints), and the newest data of each
-- real-time dataset, written by every real-time check. The Airflow UI's coverage view
-- (pmp.coverage_view) reads these two tables only: one indexed query for years of days.
CREATE TABLE IF NOT EXISTS coverage_days (
    iso          text NOT NULL,
    dataset      text NOT NULL,
    market_day   date NOT NULL,
    status       text NOT NULL CHECK (status IN ('complete', 'partial', 'missing', 'in_progress')),
    rows         bigint NOT NULL,
    detail       text NOT NULL,
    missing      text[] NOT NULL DEFAULT '{}',
    checked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (iso, dataset, market_day)
);

CREATE TABLE IF NOT EXISTS freshness (
    iso          text NOT NULL,
    dataset      text NOT NULL,
    newest       timestamptz,
    lag_minutes  double precision,
    max_lag_minutes double precision NOT NULL,
    checked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (iso, dataset)
);
