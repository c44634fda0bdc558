-- +goose Up
-- The recent history of each asset's polls, for the console's asset detail
-- and GET /v1/assets/{name}/history. Both tables are bounded: the store
-- prunes them as it writes (RecordPoll), in the same transaction.
-- asset is the asset's name, without a foreign key to assets, as in 00003.

-- The last polls of each asset, one row per poll turn, at most 50 per
-- asset (older rows are deleted on write). A continuous poll's periods
-- that read nothing and succeeded are not kept: they come every minute
-- whether or not messages do, and would push every other poll out. AUTOINCREMENT: ids only
-- grow, so the newest polls are the highest ids.
CREATE TABLE ingest_poll_history (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    asset              TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    started_at         TEXT    NOT NULL,
    duration_ns        INTEGER NOT NULL,
    status             TEXT    NOT NULL,
    error              TEXT    NOT NULL DEFAULT '',
    messages_read      INTEGER NOT NULL DEFAULT 0,
    containers_created INTEGER NOT NULL DEFAULT 0,
    artifacts_created  INTEGER NOT NULL DEFAULT 0,
    duplicates_skipped INTEGER NOT NULL DEFAULT 0,
    dead_lettered      INTEGER NOT NULL DEFAULT 0,
    gaps               INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ingest_poll_history_asset_id ON ingest_poll_history (asset, id);

-- Per asset and minute (UTC, truncated): the messages its polls read that
-- ended in that minute, and the last lag they saw (every partition
-- together; NULL when no poll of the minute could ask Kafka). Rows older
-- than 24 hours are deleted on write.
CREATE TABLE ingest_minutes (
    asset    TEXT    NOT NULL,
    minute   TEXT    NOT NULL,
    messages INTEGER NOT NULL DEFAULT 0,
    lag      INTEGER,
    PRIMARY KEY (asset, minute)
);

-- +goose Down
DROP TABLE ingest_minutes;
DROP TABLE ingest_poll_history;
