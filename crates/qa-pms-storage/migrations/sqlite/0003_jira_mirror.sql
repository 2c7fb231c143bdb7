-- The ticket table doubles as the mirror of Jira when Jira is configured: when each row was last
-- fetched from Jira (NULL: written here only), and when Jira deleted it (a tombstone: workflows
-- may still reference the key). Milliseconds since the Unix epoch, as elsewhere.
ALTER TABLE jira_tickets ADD COLUMN fetched_at INTEGER;
ALTER TABLE jira_tickets ADD COLUMN deleted_at INTEGER;

-- Which process is fetching a ticket from Jira right now (see the PostgreSQL migration).
CREATE TABLE jira_fetch_leases (
    key        TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
