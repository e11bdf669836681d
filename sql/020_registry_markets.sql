-- Markets are declared by the dataset registry (DatasetSpec.market in include/pmp/isos/<iso>/datasets.py),
-- not by a CHECK listing them: a new ISO adds its markets (PJM's real-time reserve market "RT",
-- MISO's ex-ante day-ahead market, ...) with new files only. The loader (pmp.loader) rejects rows whose
-- market no registry entry declares, with an error naming the market and the dataset, before anything
-- is written.
ALTER TABLE lmp DROP CONSTRAINT IF EXISTS lmp_market_check;
ALTER TABLE ancillary_services DROP CONSTRAINT IF EXISTS ancillary_services_market_check;
