-- How current each dataset is (issue 12): per ISO and dataset, the newest interval end loaded, its lag
-- behind now, the newest document's publication and load times, and the lag the real-time check
-- allows (recorded by that check in `freshness`, sql/081). `pmp status` prints this view.
-- Numbered after 030 (ingest_log.rows_to) and 081 (freshness), which it reads.
--
-- The newest interval end comes from the rows of the document whose rows reach furthest
-- (ingest_log.rows_to, the interval_start of its last row): one index probe on
-- (iso, source, interval_start) in one chunk per dataset, never a scan of the data tables.
CREATE OR REPLACE VIEW dataset_freshness AS
WITH docs AS (
    SELECT iso, dataset, max(published_at) AS newest_published_at, max(loaded_at) AS newest_loaded_at,
           count(*) AS documents
    FROM ingest_log GROUP BY iso, dataset
), last AS (
    SELECT DISTINCT ON (iso, dataset) iso, dataset, target_table, source_name, rows_to
    FROM ingest_log WHERE rows_to IS NOT NULL
    ORDER BY iso, dataset, rows_to DESC
), newest AS (
    SELECT last.iso, last.dataset, COALESCE(
        (SELECT max(t.interval_end) FROM lmp t WHERE last.target_table = 'lmp' AND t.iso = upper(last.iso)
            AND t.source = last.source_name AND t.interval_start = last.rows_to),
        (SELECT max(t.interval_end) FROM ancillary_services t WHERE last.target_table = 'ancillary_services'
            AND t.iso = upper(last.iso) AND t.source = last.source_name AND t.interval_start = last.rows_to),
        (SELECT max(t.interval_end) FROM load t WHERE last.target_table = 'load' AND t.iso = upper(last.iso)
            AND t.source = last.source_name AND t.interval_start = last.rows_to),
        (SELECT max(t.interval_end) FROM fuel_mix t WHERE last.target_table = 'fuel_mix'
            AND t.iso = upper(last.iso) AND t.source = last.source_name AND t.interval_start = last.rows_to)
    ) AS newest_interval_end
    FROM last
)
SELECT d.iso, d.dataset, n.newest_interval_end, now() - n.newest_interval_end AS lag,
       d.newest_published_at, d.newest_loaded_at, d.documents,
       f.max_lag_minutes, f.checked_at AS last_checked_at,
       CASE WHEN f.max_lag_minutes IS NULL OR n.newest_interval_end IS NULL THEN NULL
            ELSE now() - n.newest_interval_end > make_interval(secs => f.max_lag_minutes * 60) END AS behind
FROM docs d
LEFT JOIN newest n USING (iso, dataset)
LEFT JOIN freshness f USING (iso, dataset);
