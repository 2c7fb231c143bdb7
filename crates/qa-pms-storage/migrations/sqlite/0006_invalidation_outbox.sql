-- Cache invalidations as rows of the write's own transaction (an outbox), recorded by triggers on
-- every table whose rows feed a cache: whoever writes the file (the service, the sqlite3 shell,
-- another process), the service learns what to drop by reading the rows after the last one it
-- applied (src/sqlite.rs, `read_outbox`). A message reads `<origin> <what> [<key>]`
-- (qa-pms-api/src/invalidation.rs); the origin of these is `db`.
--
-- One row per message: writing a message again moves its row to the end (a new `seq`, the
-- largest), so a bulk load of a million workflows leaves one `db dashboards` row, not a million.
-- Writers are serialized, so `seq` grows in commit order.
CREATE TABLE cache_invalidations (
    seq        INTEGER PRIMARY KEY,
    message    TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX cache_invalidations_created_at ON cache_invalidations (created_at);

-- Tickets: each key whose served fields changed (a mirror refresh that only moves `fetched_at`
-- drops nothing).
CREATE TRIGGER jira_tickets_inserted AFTER INSERT ON jira_tickets BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db ticket ' || new.key, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
CREATE TRIGGER jira_tickets_deleted AFTER DELETE ON jira_tickets BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db ticket ' || old.key, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
CREATE TRIGGER jira_tickets_updated AFTER UPDATE ON jira_tickets
WHEN old.key IS NOT new.key OR old.summary IS NOT new.summary OR old.status IS NOT new.status
  OR old.description IS NOT new.description OR old.assignee IS NOT new.assignee
  OR old.priority IS NOT new.priority OR old.updated_at IS NOT new.updated_at
  OR old.deleted_at IS NOT new.deleted_at
BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db ticket ' || old.key, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
           ('db ticket ' || new.key, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;

-- Templates: each one written.
CREATE TRIGGER workflow_templates_inserted AFTER INSERT ON workflow_templates BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db template ' || new.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
CREATE TRIGGER workflow_templates_updated AFTER UPDATE ON workflow_templates BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db template ' || old.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
           ('db template ' || new.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
CREATE TRIGGER workflow_templates_deleted AFTER DELETE ON workflow_templates BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db template ' || old.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;

-- Dashboards (workflows, patterns) and search (the catalog): one message for any row written.
CREATE TRIGGER workflows_inserted AFTER INSERT ON workflows BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db dashboards', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
CREATE TRIGGER workflows_updated AFTER UPDATE ON workflows BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db dashboards', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
CREATE TRIGGER workflows_deleted AFTER DELETE ON workflows BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db dashboards', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
CREATE TRIGGER patterns_inserted AFTER INSERT ON patterns BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db dashboards', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
CREATE TRIGGER patterns_updated AFTER UPDATE ON patterns BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db dashboards', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
CREATE TRIGGER patterns_deleted AFTER DELETE ON patterns BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db dashboards', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
CREATE TRIGGER catalog_entries_inserted AFTER INSERT ON catalog_entries BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db search', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
CREATE TRIGGER catalog_entries_updated AFTER UPDATE ON catalog_entries BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db search', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
CREATE TRIGGER catalog_entries_deleted AFTER DELETE ON catalog_entries BEGIN
    INSERT INTO cache_invalidations (message, created_at)
    VALUES ('db search', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (message) DO UPDATE SET
        seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at;
END;
