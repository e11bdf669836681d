-- What the real-time ingest's trigger last saw of each dataset's listing (issue 12; pmp.triggers).
-- A watched real-time run's `ingest` task starts in the triggerer and waits for the ISO's listing
-- to change; it compares its first poll with the state the last successful run recorded here, so a
-- document published between two runs is loaded at once, not at the next publication.
-- `state`: listing key (the URL's path) -> digest, or {"clock": <due instant>} for a clock probe.
-- Numbered in the real-time range (010-019); it reads and changes nothing else.
CREATE TABLE IF NOT EXISTS listing_state (
    iso         text        NOT NULL,
    dataset     text        NOT NULL,
    state       jsonb       NOT NULL,
    seen_at     timestamptz NOT NULL,  -- when the trigger polled the listing it fired on
    recorded_at timestamptz NOT NULL DEFAULT now(),  -- when the run that loaded after it succeeded
    PRIMARY KEY (iso, dataset)
);
COMMENT ON TABLE listing_state IS
    'Per real-time dataset: the ISO listing as the last successful run saw it (pmp.triggers).';
