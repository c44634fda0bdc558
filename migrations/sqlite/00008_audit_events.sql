-- +goose Up
-- The audit trail: one row per change made through the API or the console,
-- written after the change succeeded. changes is a JSON object of what
-- changed; a secret field appears in it only as "changed", never with its
-- value (sealed or not). Rows older than audit.retention are pruned.
-- AUTOINCREMENT: ids give the order of the trail and are never reused.
CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT    NOT NULL,
    client       TEXT    NOT NULL DEFAULT '',
    actor        TEXT    NOT NULL,
    method       TEXT    NOT NULL,
    route        TEXT    NOT NULL,
    object_kind  TEXT    NOT NULL,
    object_name  TEXT    NOT NULL,
    action       TEXT    NOT NULL CHECK (action IN ('create', 'update', 'delete', 'retry', 'enable', 'disable')),
    version      INTEGER,
    changes      TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_object ON audit_events (object_kind, object_name, id);
CREATE INDEX audit_events_at ON audit_events (at);

-- +goose Down
DROP TABLE audit_events;
