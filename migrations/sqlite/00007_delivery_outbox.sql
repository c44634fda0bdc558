-- +goose Up
-- Push delivery. A batch of an asset in push mode writes, in its own
-- transaction, one outbox row per container it created or added artifacts
-- to: the container and the id range of the artifacts it added (NULL when
-- it added none). A stored container is then always either delivered or
-- waiting. state: pending (to send at next_attempt_at), sending (marked
-- before the request, so a row found sending after a crash is the one whose
-- outcome is unknown), delivered, dead (refused by the SOAR; soar_answer
-- keeps its answer). message_time is the oldest Kafka timestamp of the
-- batch's messages, for end-to-end latency. AUTOINCREMENT: ids give the
-- outbox order and are never reused.
CREATE TABLE delivery_outbox (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    asset             TEXT    NOT NULL,
    container_id      INTEGER NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    first_artifact_id INTEGER,
    last_artifact_id  INTEGER,
    message_time      TEXT,
    created_at        TEXT    NOT NULL,
    state             TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'delivered', 'dead')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT    NOT NULL DEFAULT '',
    next_attempt_at   TEXT    NOT NULL,
    delivered_at      TEXT,
    soar_answer       TEXT    NOT NULL DEFAULT '',
    CHECK ((first_artifact_id IS NULL) = (last_artifact_id IS NULL))
);
CREATE INDEX delivery_outbox_asset_state_id ON delivery_outbox (asset, state, id);
-- A container's rows in order (a row waits for the earlier ones of its
-- container), and the cascade from containers.
CREATE INDEX delivery_outbox_container_id ON delivery_outbox (container_id, id);

-- The SOAR's id of each delivered container, where later artifacts go.
CREATE TABLE delivery_containers (
    container_id      INTEGER NOT NULL PRIMARY KEY REFERENCES containers (id) ON DELETE CASCADE,
    asset             TEXT    NOT NULL,
    soar_container_id INTEGER NOT NULL
);

-- +goose Down
DROP TABLE delivery_containers;
DROP TABLE delivery_outbox;
