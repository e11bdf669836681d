-- The ISO's own id of a pricing location, where it publishes one: NYISO's PTID, ISO-NE's
-- Location ID. Rows stay keyed by the published name (what every ISO file carries); the id
-- follows a node across renames. NULL for ISOs that key locations by name only (ERCOT, CAISO).
ALTER TABLE lmp ADD COLUMN IF NOT EXISTS location_id text;
