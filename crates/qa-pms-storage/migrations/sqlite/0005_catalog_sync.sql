-- The catalog syncs from Postman and Testmo: one row per source, holding the run in progress (its
-- holder and lease, so that two processes never sync one source at the same time) or the last one
-- that ended (when, what it changed, or why it failed). Times in Unix milliseconds.
CREATE TABLE catalog_syncs (
    source          TEXT PRIMARY KEY CHECK (source IN ('postman', 'testmo')),
    -- Set while a run holds the source; NULL once it ended.
    holder          TEXT,
    lease_until     INTEGER,
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    added           INTEGER,
    changed         INTEGER,
    removed         INTEGER,
    error           TEXT,
    last_success_at INTEGER
);
