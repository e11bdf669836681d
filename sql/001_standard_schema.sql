-- Standard warehouse schema. Applied by `pmp db migrate`; each file runs once, in order, in
-- one transaction, and is recorded in pmp_migrations. TimescaleDB hypertables and
-- compression are applied afterwards by pmp.db (idempotent, depends on the extension).
--
-- Conventions for every ISO:
--   * interval_start / interval_end are UTC instants ([start, end)); local labels never stored as keys.
--   * prices are double precision so values round-trip exactly as published.
--   * lmp = energy + congestion + loss (+ ghg, the greenhouse-gas component only CAISO publishes);
--     components are NULL where the ISO publishes none.
--   * published_at is the ISO's publication time of the source document; a newer
--     publication of the same key replaces the older one.

CREATE TABLE IF NOT EXISTS lmp (
    interval_start  timestamptz      NOT NULL,
    interval_end    timestamptz      NOT NULL,
    iso             text             NOT NULL,
    market          text             NOT NULL CHECK (market IN ('DAM', 'RT5M', 'RT15M', 'RT60M', 'HASP')),
    location        text             NOT NULL,
    location_type   text,
    lmp             double precision,
    energy          double precision,
    congestion      double precision,
    loss            double precision,
    ghg             double precision,
    published_at    timestamptz,
    source          text             NOT NULL,
    ingested_at     timestamptz      NOT NULL DEFAULT now(),
    CHECK (interval_end > interval_start),
    PRIMARY KEY (iso, market, location, interval_start)
);

CREATE TABLE IF NOT EXISTS ancillary_services (
    interval_start     timestamptz      NOT NULL,
    interval_end       timestamptz      NOT NULL,
    iso                text             NOT NULL,
    market             text             NOT NULL CHECK (market IN ('DAM', 'RT5M', 'RT15M', 'RT60M', 'HASP')),
    region             text             NOT NULL,
    product            text             NOT NULL,
    clearing_price     double precision,
    clearing_quantity  double precision,
    requirement        double precision,
    published_at       timestamptz,
    source             text             NOT NULL,
    ingested_at        timestamptz      NOT NULL DEFAULT now(),
    CHECK (interval_end > interval_start),
    PRIMARY KEY (iso, market, region, product, interval_start)
);

-- Actuals use kind='actual', model='' and forecast_issued_at = interval_end (the instant the
-- value became known), so one primary key covers actuals and every forecast vintage.
CREATE TABLE IF NOT EXISTS load (
    interval_start      timestamptz      NOT NULL,
    interval_end        timestamptz      NOT NULL,
    iso                 text             NOT NULL,
    area                text             NOT NULL,
    kind                text             NOT NULL CHECK (kind IN ('actual', 'forecast')),
    forecast_issued_at  timestamptz      NOT NULL,
    model               text             NOT NULL DEFAULT '',
    load_mw             double precision,
    in_use              boolean,
    published_at        timestamptz,
    source              text             NOT NULL,
    ingested_at         timestamptz      NOT NULL DEFAULT now(),
    CHECK (interval_end > interval_start),
    PRIMARY KEY (iso, area, kind, model, forecast_issued_at, interval_start)
);

CREATE TABLE IF NOT EXISTS fuel_mix (
    interval_start  timestamptz      NOT NULL,
    interval_end    timestamptz      NOT NULL,
    iso             text             NOT NULL,
    fuel            text             NOT NULL,
    generation_mw   double precision,
    published_at    timestamptz,
    source          text             NOT NULL,
    ingested_at     timestamptz      NOT NULL DEFAULT now(),
    CHECK (interval_end > interval_start),
    -- interval_end is part of the key: some ISOs publish the same fuel at two resolutions
    -- (e.g. ERCOT's 5-minute dashboard and its 15-minute annual workbooks).
    PRIMARY KEY (iso, fuel, interval_start, interval_end)
);

-- One row per source document: a document is loaded exactly once; a revision (same
-- source_id, new checksum) replaces the rows of the previous version and bumps revision.
CREATE TABLE IF NOT EXISTS ingest_log (
    iso                text         NOT NULL,
    dataset            text         NOT NULL,
    source_id          text         NOT NULL,
    source_name        text         NOT NULL,
    source_url         text,
    raw_uri            text,
    checksum           text         NOT NULL,
    published_at       timestamptz,
    market_day         date,
    target_table       text         NOT NULL,
    rows               bigint       NOT NULL,
    revision           integer      NOT NULL DEFAULT 1,
    previous_checksums text[]       NOT NULL DEFAULT '{}',
    loaded_at          timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (iso, dataset, source_id)
);

CREATE INDEX IF NOT EXISTS ingest_log_day_idx ON ingest_log (iso, dataset, market_day);
