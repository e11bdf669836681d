-- The first and last interval_start of each document's rows (issue 15): a revision deletes the old
-- rows inside that range only, so the DELETE touches the chunks of the document's time range, not
-- every chunk of a hypertable that holds years. NULL (documents loaded before this migration, or
-- without rows) means "unknown": their revision deletes without the time bound, as before.
ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS first_interval_start timestamptz;
ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS last_interval_start timestamptz;
