-- +goose Up
-- What polls store. asset is the asset's name, deliberately without a
-- foreign key to assets: deleting or renaming an asset's configuration must
-- not delete the cases it brought in. A NULL source_data_identifier (the
-- parser gave none) never collides, since NULLs are distinct in UNIQUE.
-- Bodies are the SOAR REST bodies; name, label and severity are copied out
-- of the container body for filtering. AUTOINCREMENT: an id is never reused,
-- so a client pulling ?since_id= cannot miss a container.
CREATE TABLE containers (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    asset                  TEXT    NOT NULL,
    source_data_identifier TEXT,
    name                   TEXT    NOT NULL DEFAULT '',
    label                  TEXT    NOT NULL DEFAULT '',
    severity               TEXT    NOT NULL DEFAULT '',
    body                   TEXT    NOT NULL CHECK (json_valid(body)),
    created_at             TEXT    NOT NULL,
    updated_at             TEXT    NOT NULL,
    UNIQUE (asset, source_data_identifier)
);
CREATE INDEX containers_asset_id ON containers (asset, id);

CREATE TABLE artifacts (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id           INTEGER NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    asset                  TEXT    NOT NULL,
    source_data_identifier TEXT    NOT NULL,
    body                   TEXT    NOT NULL CHECK (json_valid(body)),
    created_at             TEXT    NOT NULL,
    UNIQUE (asset, source_data_identifier)
);
CREATE INDEX artifacts_container_id ON artifacts (container_id, id);

-- The next offset to read per partition of an asset's topic, written in the
-- same transaction as the containers and artifacts read up to it.
CREATE TABLE ingest_offsets (
    asset       TEXT    NOT NULL,
    topic       TEXT    NOT NULL,
    partition   INTEGER NOT NULL CHECK (partition >= 0),
    next_offset INTEGER NOT NULL CHECK (next_offset >= 0),
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (asset, topic, partition)
);

-- +goose Down
DROP TABLE ingest_offsets;
DROP TABLE artifacts;
DROP TABLE containers;
