-- +goose Up
-- Who reads each partition of an asset spread over replicas (ingest.spread):
-- the replica the consumer group assigned it to, and an epoch bumped at each
-- assignment. A batch of such an asset carries the epoch its replica got and
-- is stored only while it is still the partition's epoch (SaveBatch checks it
-- with the row locked FOR SHARE; an assignment's bump locks it FOR UPDATE),
-- so a replica that lost the partition, or hung and woke up, can never write
-- it again.
CREATE TABLE ingest_partition_owners (
    asset      TEXT        COLLATE "C" NOT NULL,
    topic      TEXT        COLLATE "C" NOT NULL,
    partition  INTEGER     NOT NULL CHECK (partition >= 0),
    owner      TEXT        NOT NULL,
    epoch      BIGINT      NOT NULL CHECK (epoch > 0),
    claimed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (asset, topic, partition)
);

-- +goose Down
DROP TABLE ingest_partition_owners;
