-- +goose Up
-- The audit trail: one row per change made through the API or the console,
-- written after the change succeeded. changes is a JSON object of what
-- changed; a secret field appears in it only as "changed", never with its
-- value (sealed or not). Rows older than audit.retention are pruned.
CREATE TABLE audit_events (
    id           BIGSERIAL   PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    client       TEXT        NOT NULL DEFAULT '',
    actor        TEXT        NOT NULL,
    method       TEXT        NOT NULL,
    route        TEXT        NOT NULL,
    object_kind  TEXT        COLLATE "C" NOT NULL,
    object_name  TEXT        COLLATE "C" NOT NULL,
    action       TEXT        NOT NULL CHECK (action IN ('create', 'update', 'delete', 'retry', 'enable', 'disable')),
    version      BIGINT,
    changes      TEXT        NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_object ON audit_events (object_kind, object_name, id);
CREATE INDEX audit_events_at ON audit_events (at);

-- +goose Down
DROP TABLE audit_events;
