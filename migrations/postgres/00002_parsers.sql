-- +goose Up
-- A parser's current version is the highest of parser_versions; versions are
-- never rewritten, so a container can always be traced to the source that
-- made it. name is COLLATE "C" as assets.name is.
CREATE TABLE parsers (
    id          BIGSERIAL   PRIMARY KEY,
    name        TEXT        COLLATE "C" NOT NULL UNIQUE,
    description TEXT        NOT NULL DEFAULT '',
    version     BIGINT      NOT NULL DEFAULT 1,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE parser_versions (
    parser_id  BIGINT      NOT NULL REFERENCES parsers (id) ON DELETE CASCADE,
    version    BIGINT      NOT NULL,
    source     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (parser_id, version)
);

-- +goose Down
DROP TABLE parser_versions;
DROP TABLE parsers;
