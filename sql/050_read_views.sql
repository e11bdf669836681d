-- Views for people who stay in SQL: the same answers as pmp.read (README "Reading the data").
-- Filters on iso, market, area, location and interval_start reach the hypertables' indexes through
-- every view (they are columns of the DISTINCT ON or of the join).

-- Actual load: one row per area and interval (several resolutions may coexist: filter on
-- interval_end - interval_start).
CREATE OR REPLACE VIEW load_actual AS
SELECT interval_start, interval_end, iso, area, load_mw, published_at, source
FROM load
WHERE kind = 'actual';

-- The newest forecast vintage per area, model and interval.
CREATE OR REPLACE VIEW load_forecast_latest AS
SELECT DISTINCT ON (iso, area, model, interval_start, interval_end)
       interval_start, interval_end, iso, area, model, forecast_issued_at, load_mw, in_use, published_at, source
FROM load
WHERE kind = 'forecast'
ORDER BY iso, area, model, interval_start, interval_end, forecast_issued_at DESC;

-- The vintage a backtest at p_as_of would have seen: per area, model and interval in
-- [p_start, p_end), the newest forecast issued at or before p_as_of.
CREATE OR REPLACE FUNCTION load_forecast_as_of(p_iso text, p_start timestamptz, p_end timestamptz,
                                               p_as_of timestamptz)
RETURNS TABLE (interval_start timestamptz, interval_end timestamptz, iso text, area text, model text,
               forecast_issued_at timestamptz, load_mw double precision, in_use boolean,
               published_at timestamptz, source text)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (l.area, l.model, l.interval_start, l.interval_end)
           l.interval_start, l.interval_end, l.iso, l.area, l.model, l.forecast_issued_at, l.load_mw, l.in_use,
           l.published_at, l.source
    FROM load l
    WHERE l.kind = 'forecast' AND l.iso = upper(p_iso) AND l.interval_start >= p_start
      AND l.interval_start < p_end AND l.forecast_issued_at <= p_as_of
    ORDER BY l.area, l.model, l.interval_start, l.interval_end, l.forecast_issued_at DESC
$$;

-- Which published location types are trading hubs and which are load zones, per ISO (one place;
-- a new ISO adds its rows in its own migration).
CREATE TABLE IF NOT EXISTS lmp_location_classes (
    iso             text NOT NULL,
    location_type   text NOT NULL,
    location_class  text NOT NULL CHECK (location_class IN ('hub', 'zone')),
    PRIMARY KEY (iso, location_type)
);

INSERT INTO lmp_location_classes (iso, location_type, location_class) VALUES
    ('ERCOT', 'HU', 'hub'), ('ERCOT', 'SH', 'hub'), ('ERCOT', 'AH', 'hub'),            -- hubs, hub averages
    ('ERCOT', 'LZ', 'zone'), ('ERCOT', 'LZEW', 'zone'),                                  -- load zones (+ energy-weighted)
    ('ERCOT', 'LZ_DC', 'zone'), ('ERCOT', 'LZDCEW', 'zone'),
    ('CAISO', 'Trading Hub', 'hub'), ('CAISO', 'DLAP', 'zone'),
    ('NYISO', 'Zone', 'zone'),
    ('ISONE', 'HUB', 'hub'), ('ISONE', 'LOAD ZONE', 'zone')
ON CONFLICT DO NOTHING;

CREATE OR REPLACE VIEW hub_zone_prices AS
SELECT l.interval_start, l.interval_end, l.iso, l.market, c.location_class, l.location, l.location_type,
       l.location_id, l.lmp, l.energy, l.congestion, l.loss, l.ghg, l.published_at, l.source
FROM lmp l
JOIN lmp_location_classes c ON c.iso = l.iso AND c.location_type = l.location_type;

CREATE OR REPLACE VIEW hub_prices AS
SELECT * FROM hub_zone_prices WHERE location_class = 'hub';

CREATE OR REPLACE VIEW zone_prices AS
SELECT * FROM hub_zone_prices WHERE location_class = 'zone';
