-- dataset_freshness: per ISO and dataset, how current the warehouse is (issue 12.4; `pmp status`).
-- Read from ingest_log, not by scanning the hypertables: the newest interval start of each dataset
-- is its documents' rows_to (sql/030); the newest interval END is looked up among the rows of the
-- one document that holds it (iso, source, interval_start: the *_source_idx index of sql/030, one
-- index probe per dataset). A forecast's newest interval_end lies ahead of now (negative lag).
--   newest_interval_end  the end of the newest interval loaded
--   lag                  now() - newest_interval_end
--   newest_published_at  the newest publication time of a loaded document (as the ISO stated it)
--   newest_loaded_at     when the newest document was committed to the warehouse
--   documents            documents loaded for the dataset
-- rows_from/rows_to are added by sql/030 too; both are IF NOT EXISTS, since a new warehouse runs
-- this file before 030 (files run in name order, an existing one applies it after).
ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS rows_from timestamptz;
ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS rows_to timestamptz;

CREATE OR REPLACE VIEW dataset_freshness AS
WITH per_dataset AS (
    SELECT iso, dataset,
           max(published_at) AS newest_published_at,
           max(loaded_at) AS newest_loaded_at,
           count(*) AS documents
    FROM ingest_log
    GROUP BY iso, dataset
), newest_doc AS (
    SELECT DISTINCT ON (iso, dataset) iso, dataset, target_table, source_name, rows_to
    FROM ingest_log
    WHERE rows_to IS NOT NULL
    ORDER BY iso, dataset, rows_to DESC, loaded_at DESC
), newest AS (
    SELECT n.iso, n.dataset,
           CASE n.target_table  -- data tables carry the upper-case ISO name
               WHEN 'lmp' THEN (SELECT max(t.interval_end) FROM lmp t WHERE t.iso = upper(n.iso)
                                AND t.source = n.source_name AND t.interval_start = n.rows_to)
               WHEN 'ancillary_services' THEN (SELECT max(t.interval_end) FROM ancillary_services t
                                WHERE t.iso = upper(n.iso) AND t.source = n.source_name AND t.interval_start = n.rows_to)
               WHEN 'load' THEN (SELECT max(t.interval_end) FROM load t WHERE t.iso = upper(n.iso)
                                AND t.source = n.source_name AND t.interval_start = n.rows_to)
               WHEN 'fuel_mix' THEN (SELECT max(t.interval_end) FROM fuel_mix t WHERE t.iso = upper(n.iso)
                                AND t.source = n.source_name AND t.interval_start = n.rows_to)
           END AS newest_interval_end
    FROM newest_doc n
)
SELECT p.iso, p.dataset, n.newest_interval_end, now() - n.newest_interval_end AS lag,
       p.newest_published_at, p.newest_loaded_at, p.documents
FROM per_dataset p
LEFT JOIN newest n USING (iso, dataset);
