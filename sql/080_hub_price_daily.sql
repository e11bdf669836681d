-- Daily hub-price summary (the example DAG scheduled on the day-ahead price Assets,
-- dags/hub_price_summary.py): per ISO, market, hub and local market day, the price range and mean
-- of the day's intervals. Rewritten whole for a day whenever that day's prices are (re)loaded.
CREATE TABLE IF NOT EXISTS hub_price_daily (
    iso          text NOT NULL,
    market       text NOT NULL,
    location     text NOT NULL,
    market_day   date NOT NULL,
    intervals    integer NOT NULL,
    lmp_min      double precision,
    lmp_mean     double precision,
    lmp_max      double precision,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (iso, market, location, market_day)
);
