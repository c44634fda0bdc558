-- +goose Up
-- A parser's current version is the highest of parser_versions; versions are
-- never rewritten, so a container can always be traced to the source that
-- made it.
CREATE TABLE parsers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL DEFAULT '',
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

CREATE TABLE parser_versions (
    parser_id  INTEGER NOT NULL REFERENCES parsers (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    source     TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (parser_id, version)
);

-- +goose Down
DROP TABLE parser_versions;
DROP TABLE parsers;
