-- A revision replaces exactly the rows its document produced before (pmp.loader.load_batch):
-- ingest_log keeps the interval_start range [rows_from, rows_to] of the rows each loaded version
-- produced, and the DELETE of a revision is bounded by iso, source and that range. The time bound
-- lets TimescaleDB exclude every other chunk; the (iso, source, interval_start) index makes the
-- delete an index range scan inside the chunks it touches (before: a scan of every chunk of the
-- table, and every document cut from one annual workbook, which share its source name, deleted).
ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS rows_from timestamptz;
ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS rows_to timestamptz;

CREATE INDEX IF NOT EXISTS lmp_source_idx ON lmp (iso, source, interval_start);
CREATE INDEX IF NOT EXISTS ancillary_services_source_idx ON ancillary_services (iso, source, interval_start);
CREATE INDEX IF NOT EXISTS load_source_idx ON load (iso, source, interval_start);
CREATE INDEX IF NOT EXISTS fuel_mix_source_idx ON fuel_mix (iso, source, interval_start);
