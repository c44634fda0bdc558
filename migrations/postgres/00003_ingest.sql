-- +goose Up
-- What polls store. asset is the asset's name, deliberately without a
-- foreign key to assets: deleting or renaming an asset's configuration must
-- not delete the cases it brought in. A NULL source_data_identifier (the
-- parser gave none) never collides, since NULLs are distinct in UNIQUE.
-- Bodies are the SOAR REST bodies; name, label and severity are copied out
-- of the container body for filtering.
CREATE TABLE containers (
    id                     BIGSERIAL   PRIMARY KEY,
    asset                  TEXT        COLLATE "C" NOT NULL,
    source_data_identifier TEXT        COLLATE "C",
    name                   TEXT        NOT NULL DEFAULT '',
    label                  TEXT        NOT NULL DEFAULT '',
    severity               TEXT        NOT NULL DEFAULT '',
    body                   JSONB       NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    UNIQUE (asset, source_data_identifier)
);
CREATE INDEX containers_asset_id ON containers (asset, id);

CREATE TABLE artifacts (
    id                     BIGSERIAL   PRIMARY KEY,
    container_id           BIGINT      NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    asset                  TEXT        COLLATE "C" NOT NULL,
    source_data_identifier TEXT        COLLATE "C" NOT NULL,
    body                   JSONB       NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    UNIQUE (asset, source_data_identifier)
);
CREATE INDEX artifacts_container_id ON artifacts (container_id, id);

-- The next offset to read per partition of an asset's topic, written in the
-- same transaction as the containers and artifacts read up to it.
CREATE TABLE ingest_offsets (
    asset       TEXT        COLLATE "C" NOT NULL,
    topic       TEXT        COLLATE "C" NOT NULL,
    partition   INTEGER     NOT NULL CHECK (partition >= 0),
    next_offset BIGINT      NOT NULL CHECK (next_offset >= 0),
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (asset, topic, partition)
);

-- +goose Down
DROP TABLE ingest_offsets;
DROP TABLE artifacts;
DROP TABLE containers;
