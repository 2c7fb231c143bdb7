-- qa-pms schema, PostgreSQL.

CREATE TABLE jira_tickets (
    key         TEXT PRIMARY KEY,
    summary     TEXT NOT NULL,
    status      TEXT NOT NULL,
    description TEXT,
    assignee    TEXT,
    priority    TEXT,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX jira_tickets_status ON jira_tickets (status, key);
CREATE INDEX jira_tickets_assignee ON jira_tickets (assignee, key);

CREATE TABLE workflow_templates (
    id                UUID PRIMARY KEY,
    name              TEXT NOT NULL,
    steps             JSONB NOT NULL,
    workflow_type     TEXT NOT NULL,
    estimated_minutes INTEGER NOT NULL CHECK (estimated_minutes > 0),
    updated_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE workflows (
    id                UUID PRIMARY KEY,
    template_id       UUID NOT NULL REFERENCES workflow_templates (id),
    ticket_key        TEXT NOT NULL REFERENCES jira_tickets (key),
    state             TEXT NOT NULL CHECK (state IN ('active', 'paused', 'completed', 'cancelled')),
    steps             JSONB NOT NULL,
    estimated_minutes INTEGER NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL,
    completed_at      TIMESTAMPTZ,
    duration_seconds  BIGINT,
    updated_at        TIMESTAMPTZ NOT NULL,
    version           BIGINT NOT NULL
);
CREATE INDEX workflows_template ON workflows (template_id);
CREATE INDEX workflows_ticket ON workflows (ticket_key);
-- The KPI query is an index-only scan of this: completed runs by completion time.
CREATE INDEX workflows_completed ON workflows (completed_at) INCLUDE (ticket_key, duration_seconds)
    WHERE state = 'completed';

CREATE TABLE patterns (
    id          UUID PRIMARY KEY,
    workflow_id UUID NOT NULL REFERENCES workflows (id),
    ticket_key  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    detected_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX patterns_detected_at ON patterns (detected_at);

CREATE TABLE catalog_entries (
    id          BIGSERIAL PRIMARY KEY,
    source      TEXT NOT NULL CHECK (source IN ('postman', 'testmo')),
    name        TEXT NOT NULL,
    url         TEXT NOT NULL,
    text        TEXT NOT NULL,
    search_name TEXT NOT NULL,
    search_text TEXT NOT NULL,
    UNIQUE (source, url)
);
