-- +goose Up
-- Artifact bodies are checked in Go instead of by CHECK (json_valid(body)):
-- the poll's parse workers have them valid already (ingest.Batch's
-- BodiesValid) and anything else is checked by SaveBatch, which names the
-- field. The CHECK ran json_valid on the one writer for every artifact, a
-- fifth of a poll's store time. SQLite cannot drop a CHECK, so the table is
-- rebuilt: same columns, ids, indexes and foreign key. AUTOINCREMENT's
-- high-water mark is carried over, so an id deleted at the end is not
-- handed out again. Container bodies keep their CHECK: one per batch.
CREATE TABLE artifacts_new (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id           INTEGER NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    asset                  TEXT    NOT NULL,
    source_data_identifier TEXT    NOT NULL,
    body                   TEXT    NOT NULL,
    created_at             TEXT    NOT NULL,
    UNIQUE (asset, source_data_identifier)
);
INSERT INTO artifacts_new (id, container_id, asset, source_data_identifier, body, created_at)
    SELECT id, container_id, asset, source_data_identifier, body, created_at FROM artifacts ORDER BY id;
DELETE FROM sqlite_sequence WHERE name = 'artifacts_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'artifacts_new', seq FROM sqlite_sequence WHERE name = 'artifacts';
DROP TABLE artifacts;
ALTER TABLE artifacts_new RENAME TO artifacts;
CREATE INDEX artifacts_container_id ON artifacts (container_id, id);
CREATE INDEX artifacts_asset_id ON artifacts (asset, id);

-- +goose Down
CREATE TABLE artifacts_old (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id           INTEGER NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    asset                  TEXT    NOT NULL,
    source_data_identifier TEXT    NOT NULL,
    body                   TEXT    NOT NULL CHECK (json_valid(body)),
    created_at             TEXT    NOT NULL,
    UNIQUE (asset, source_data_identifier)
);
INSERT INTO artifacts_old (id, container_id, asset, source_data_identifier, body, created_at)
    SELECT id, container_id, asset, source_data_identifier, body, created_at FROM artifacts ORDER BY id;
DELETE FROM sqlite_sequence WHERE name = 'artifacts_old';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'artifacts_old', seq FROM sqlite_sequence WHERE name = 'artifacts';
DROP TABLE artifacts;
ALTER TABLE artifacts_old RENAME TO artifacts;
CREATE INDEX artifacts_container_id ON artifacts (container_id, id);
CREATE INDEX artifacts_asset_id ON artifacts (asset, id);
