-- The ticket table doubles as the mirror of Jira when Jira is configured: when each row was last
-- fetched from Jira (NULL: written here only), and when Jira deleted it (a tombstone: workflows
-- may still reference the key).
ALTER TABLE jira_tickets ADD COLUMN fetched_at TIMESTAMPTZ;
ALTER TABLE jira_tickets ADD COLUMN deleted_at TIMESTAMPTZ;

-- Which replica is fetching a ticket from Jira right now, so that replicas whose caches miss the
-- same key at once make one Jira call between them.
CREATE TABLE jira_fetch_leases (
    key        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
