-- The catalog syncs from Postman and Testmo: one row per source, holding the run in progress (its
-- holder and lease, so that replicas never sync one source at the same time) or the last one that
-- ended (when, what it changed, or why it failed).
CREATE TABLE catalog_syncs (
    source          TEXT PRIMARY KEY CHECK (source IN ('postman', 'testmo')),
    -- Set while a run holds the source; NULL once it ended.
    holder          TEXT,
    lease_until     TIMESTAMPTZ,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    added           BIGINT,
    changed         BIGINT,
    removed         BIGINT,
    error           TEXT,
    last_success_at TIMESTAMPTZ
);
