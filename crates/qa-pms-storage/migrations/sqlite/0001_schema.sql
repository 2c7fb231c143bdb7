-- qa-pms schema, SQLite. Timestamps are INTEGER milliseconds since the Unix epoch (UTC),
-- UUIDs are hyphenated TEXT, step lists are JSON TEXT.

CREATE TABLE jira_tickets (
    key         TEXT PRIMARY KEY NOT NULL,
    summary     TEXT NOT NULL,
    status      TEXT NOT NULL,
    description TEXT,
    assignee    TEXT,
    priority    TEXT,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX jira_tickets_status ON jira_tickets (status, key);
CREATE INDEX jira_tickets_assignee ON jira_tickets (assignee, key);

CREATE TABLE workflow_templates (
    id                TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    steps             TEXT NOT NULL,
    workflow_type     TEXT NOT NULL,
    estimated_minutes INTEGER NOT NULL CHECK (estimated_minutes > 0),
    updated_at        INTEGER NOT NULL
);

CREATE TABLE workflows (
    id                TEXT PRIMARY KEY NOT NULL,
    template_id       TEXT NOT NULL REFERENCES workflow_templates (id),
    ticket_key        TEXT NOT NULL REFERENCES jira_tickets (key),
    state             TEXT NOT NULL CHECK (state IN ('active', 'paused', 'completed', 'cancelled')),
    steps             TEXT NOT NULL,
    estimated_minutes INTEGER NOT NULL,
    started_at        INTEGER NOT NULL,
    completed_at      INTEGER,
    duration_seconds  INTEGER,
    updated_at        INTEGER NOT NULL,
    version           INTEGER NOT NULL
);
CREATE INDEX workflows_template ON workflows (template_id);
CREATE INDEX workflows_ticket ON workflows (ticket_key);
-- The KPI query reads only this index: completed runs by completion time.
CREATE INDEX workflows_completed ON workflows (completed_at, ticket_key, duration_seconds)
    WHERE state = 'completed';

CREATE TABLE patterns (
    id          TEXT PRIMARY KEY NOT NULL,
    workflow_id TEXT NOT NULL REFERENCES workflows (id),
    ticket_key  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    detected_at INTEGER NOT NULL
);
CREATE INDEX patterns_detected_at ON patterns (detected_at);

CREATE TABLE catalog_entries (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL CHECK (source IN ('postman', 'testmo')),
    name        TEXT NOT NULL,
    url         TEXT NOT NULL,
    text        TEXT NOT NULL,
    search_name TEXT NOT NULL,
    search_text TEXT NOT NULL,
    UNIQUE (source, url)
);
