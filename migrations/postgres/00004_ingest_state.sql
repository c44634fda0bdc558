-- +goose Up
-- Where each asset's polls stand, beside what they stored. asset is the
-- asset's name, without a foreign key to assets, as in 00003: an asset's
-- history outlives its configuration.

-- One poll per asset at a time, in one process and across replicas: a poll
-- holds the asset's lease until expires_at and renews it while it runs; a
-- lease whose expires_at has passed is free to take. A batch is stored only
-- while its poll holds an unexpired lease (the fence). expires_at is set and
-- compared with the database's clock, so replicas whose clocks disagree
-- still agree on who holds a lease.
CREATE TABLE ingest_leases (
    asset       TEXT        COLLATE "C" NOT NULL PRIMARY KEY,
    holder      TEXT        COLLATE "C" NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL
);

-- The last poll of each asset, of any kind, for the ingest status.
-- last_success_at is the end of the last successful poll: kept when a later
-- poll fails, NULL until one succeeds. duration_ns is a Go time.Duration.
CREATE TABLE ingest_polls (
    asset              TEXT        COLLATE "C" NOT NULL PRIMARY KEY,
    topic              TEXT        COLLATE "C" NOT NULL,
    kind               TEXT        NOT NULL,
    started_at         TIMESTAMPTZ NOT NULL,
    duration_ns        BIGINT      NOT NULL,
    status             TEXT        NOT NULL,
    error              TEXT        NOT NULL DEFAULT '',
    messages_read      BIGINT      NOT NULL DEFAULT 0,
    containers_created BIGINT      NOT NULL DEFAULT 0,
    artifacts_created  BIGINT      NOT NULL DEFAULT 0,
    duplicates_skipped BIGINT      NOT NULL DEFAULT 0,
    dead_lettered      BIGINT      NOT NULL DEFAULT 0,
    gaps               BIGINT      NOT NULL DEFAULT 0,
    last_success_at    TIMESTAMPTZ
);

-- Runs of messages retention deleted before a poll read them, stored with
-- the batch that moves the position past them. A position never moves
-- backwards, so a gap's first offset is unique per partition: the UNIQUE
-- makes a replayed batch store it once (ON CONFLICT DO NOTHING). The newest
-- gaps are the highest ids.
CREATE TABLE ingest_gaps (
    id          BIGSERIAL   PRIMARY KEY,
    asset       TEXT        COLLATE "C" NOT NULL,
    topic       TEXT        COLLATE "C" NOT NULL,
    partition   INTEGER     NOT NULL CHECK (partition >= 0),
    from_offset BIGINT      NOT NULL CHECK (from_offset >= 0),
    to_offset   BIGINT      NOT NULL CHECK (to_offset >= from_offset),
    count       BIGINT      NOT NULL CHECK (count = to_offset - from_offset + 1),
    detected_at TIMESTAMPTZ NOT NULL,
    UNIQUE (asset, topic, partition, from_offset)
);
CREATE INDEX ingest_gaps_asset_id ON ingest_gaps (asset, id);

-- Messages the parser failed on that a poll produced to the asset's
-- dead-letter topic, stored with the batch that moves the position past
-- them. topic is the source topic, message_offset the message's offset in it
-- (OFFSET is an SQL keyword). The UNIQUE makes a replay (poll now reads from
-- the beginning) count a message once (ON CONFLICT DO NOTHING).
CREATE TABLE ingest_dead_letters (
    id                BIGSERIAL   PRIMARY KEY,
    asset             TEXT        COLLATE "C" NOT NULL,
    topic             TEXT        COLLATE "C" NOT NULL,
    partition         INTEGER     NOT NULL CHECK (partition >= 0),
    message_offset    BIGINT      NOT NULL CHECK (message_offset >= 0),
    dead_letter_topic TEXT        COLLATE "C" NOT NULL,
    parser            TEXT        NOT NULL DEFAULT '',
    error             TEXT        NOT NULL DEFAULT '',
    created_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (asset, topic, partition, message_offset)
);

-- +goose Down
DROP TABLE ingest_dead_letters;
DROP TABLE ingest_gaps;
DROP TABLE ingest_polls;
DROP TABLE ingest_leases;
