-- Indexes for the reads users run (issue 15): the primary key (iso, market, location,
-- interval_start) serves one location of one market; these serve
--   * one location over a long window in every market (pmp.read lmp(..., locations=...) without a
--     market): without it each daily chunk is scanned whole, a year is 365 full chunk scans;
--   * one location type over a short window (hub_prices / zone_prices, lmp(..., location_type=...)):
--     all hubs of one day read a few thousand index entries instead of the day's chunks.
-- On a hypertable, CREATE INDEX builds the index on every chunk and on each new chunk.
CREATE INDEX IF NOT EXISTS lmp_location_idx ON lmp (iso, location, interval_start);
CREATE INDEX IF NOT EXISTS lmp_location_type_idx ON lmp (iso, location_type, interval_start);
