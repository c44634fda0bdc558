-- +goose Up
-- name is COLLATE "C" so that names sort and compare byte by byte whatever
-- the database's locale, as they do in SQLite: the two dialects list assets
-- in the same order.
CREATE TABLE assets (
    id          BIGSERIAL   PRIMARY KEY,
    name        TEXT        COLLATE "C" NOT NULL UNIQUE,
    description TEXT        NOT NULL DEFAULT '',
    config      JSONB       NOT NULL DEFAULT '{}',
    version     BIGINT      NOT NULL DEFAULT 1,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE assets;
