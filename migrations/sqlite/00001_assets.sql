-- +goose Up
-- Timestamps are UTC text in one fixed-width form, 2006-01-02T15:04:05.000000Z
-- (RFC 3339, microseconds, like PostgreSQL's timestamptz): it reads well, it
-- sorts as text, and both dialects round-trip the same instant.
CREATE TABLE assets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL DEFAULT '',
    config      TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

-- +goose Down
DROP TABLE assets;
