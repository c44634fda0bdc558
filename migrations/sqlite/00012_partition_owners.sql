-- +goose Up
-- Who reads each partition of an asset spread over replicas (ingest.spread):
-- the replica the consumer group assigned it to, and an epoch bumped at each
-- assignment. A batch of such an asset carries the epoch its replica got and
-- is stored only while it is still the partition's epoch (SaveBatch checks it
-- inside its immediate transaction, which holds the database's write lock),
-- so a replica that lost the partition, or hung and woke up, can never write
-- it again.
CREATE TABLE ingest_partition_owners (
    asset      TEXT    NOT NULL,
    topic      TEXT    NOT NULL,
    partition  INTEGER NOT NULL CHECK (partition >= 0),
    owner      TEXT    NOT NULL,
    epoch      INTEGER NOT NULL CHECK (epoch > 0),
    claimed_at TEXT    NOT NULL,
    PRIMARY KEY (asset, topic, partition)
);

-- +goose Down
DROP TABLE ingest_partition_owners;
