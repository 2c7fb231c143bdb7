-- Cache invalidations as rows of the write's own transaction (an outbox), recorded by triggers on
-- every table whose rows feed a cache: whoever writes (the service, psql, a migration, another
-- service), every replica learns what to drop, and a replica that missed notifications reads
-- them again from here (src/postgres.rs, `read_outbox`). A message reads `<origin> <what> [<key>]`
-- (qa-pms-api/src/invalidation.rs); the origin of these is `db`.
--
-- Replicas read the rows of transactions at or after the oldest one still running when they last
-- read (`xid`, compared with `pg_snapshot_xmin`): a transaction that commits late is read however
-- late it commits, which a sequence alone cannot promise.
CREATE TABLE cache_invalidations (
    seq        BIGSERIAL PRIMARY KEY,
    xid        XID8 NOT NULL DEFAULT pg_current_xact_id(),
    message    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX cache_invalidations_xid ON cache_invalidations (xid);
CREATE INDEX cache_invalidations_created_at ON cache_invalidations (created_at);

-- Wakes the replicas when the transaction commits (PostgreSQL delivers NOTIFY only then, and one
-- per transaction for an identical payload).
CREATE FUNCTION cache_invalidations_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('qa_pms_cache', 'outbox');
    RETURN NULL;
END $$;
CREATE TRIGGER cache_invalidations_notify AFTER INSERT ON cache_invalidations
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidations_notify();

-- Tickets: each key whose served fields changed (a mirror refresh that only moves `fetched_at`
-- drops nothing); a statement changing more than 1,000 drops every ticket.
CREATE FUNCTION cache_invalidate_tickets(changed TEXT[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(changed) > 1000 THEN
        INSERT INTO cache_invalidations (message) VALUES ('db tickets');
    ELSIF cardinality(changed) > 0 THEN
        INSERT INTO cache_invalidations (message)
        SELECT 'db ticket ' || key FROM unnest(changed) AS key;
    END IF;
END $$;

CREATE FUNCTION cache_invalidate_tickets_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM cache_invalidate_tickets(ARRAY(SELECT DISTINCT key FROM written));
    RETURN NULL;
END $$;

CREATE FUNCTION cache_invalidate_tickets_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM cache_invalidate_tickets(ARRAY(
        SELECT key FROM (
            (SELECT key, summary, status, description, assignee, priority, updated_at, deleted_at
             FROM before EXCEPT
             SELECT key, summary, status, description, assignee, priority, updated_at, deleted_at
             FROM after)
            UNION
            (SELECT key, summary, status, description, assignee, priority, updated_at, deleted_at
             FROM after EXCEPT
             SELECT key, summary, status, description, assignee, priority, updated_at, deleted_at
             FROM before)
        ) AS changed GROUP BY key));
    RETURN NULL;
END $$;

CREATE TRIGGER jira_tickets_inserted AFTER INSERT ON jira_tickets
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_tickets_written();
CREATE TRIGGER jira_tickets_deleted AFTER DELETE ON jira_tickets
    REFERENCING OLD TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_tickets_written();
CREATE TRIGGER jira_tickets_updated AFTER UPDATE ON jira_tickets
    REFERENCING OLD TABLE AS before NEW TABLE AS after
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_tickets_updated();

-- Templates: each one written.
CREATE FUNCTION cache_invalidate_templates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cache_invalidations (message)
    SELECT DISTINCT 'db template ' || id::text FROM written;
    RETURN NULL;
END $$;
CREATE TRIGGER workflow_templates_inserted AFTER INSERT ON workflow_templates
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_templates();
CREATE TRIGGER workflow_templates_updated AFTER UPDATE ON workflow_templates
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_templates();
CREATE TRIGGER workflow_templates_deleted AFTER DELETE ON workflow_templates
    REFERENCING OLD TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_templates();

-- Dashboards (workflows, patterns) and search (the catalog): one message per statement that
-- wrote a row.
CREATE FUNCTION cache_invalidate_all_of() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' OR EXISTS (SELECT 1 FROM written) THEN
        INSERT INTO cache_invalidations (message) VALUES ('db ' || TG_ARGV[0]);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER workflows_inserted AFTER INSERT ON workflows REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_all_of('dashboards');
CREATE TRIGGER workflows_updated AFTER UPDATE ON workflows REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_all_of('dashboards');
CREATE TRIGGER workflows_deleted AFTER DELETE ON workflows REFERENCING OLD TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_all_of('dashboards');
CREATE TRIGGER patterns_inserted AFTER INSERT ON patterns REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_all_of('dashboards');
CREATE TRIGGER patterns_updated AFTER UPDATE ON patterns REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_all_of('dashboards');
CREATE TRIGGER patterns_deleted AFTER DELETE ON patterns REFERENCING OLD TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_all_of('dashboards');
CREATE TRIGGER catalog_entries_inserted AFTER INSERT ON catalog_entries
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_all_of('search');
CREATE TRIGGER catalog_entries_updated AFTER UPDATE ON catalog_entries
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_all_of('search');
CREATE TRIGGER catalog_entries_deleted AFTER DELETE ON catalog_entries
    REFERENCING OLD TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_all_of('search');

-- TRUNCATE has no transition tables: drop everything of the kind.
CREATE FUNCTION cache_invalidate_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cache_invalidations (message) VALUES ('db ' || TG_ARGV[0]);
    RETURN NULL;
END $$;
CREATE TRIGGER jira_tickets_truncated AFTER TRUNCATE ON jira_tickets
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_truncated('tickets');
CREATE TRIGGER workflow_templates_truncated AFTER TRUNCATE ON workflow_templates
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_truncated('templates');
CREATE TRIGGER workflows_truncated AFTER TRUNCATE ON workflows
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_truncated('dashboards');
CREATE TRIGGER patterns_truncated AFTER TRUNCATE ON patterns
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_truncated('dashboards');
CREATE TRIGGER catalog_entries_truncated AFTER TRUNCATE ON catalog_entries
    FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidate_truncated('search');
