package ingest

import "context"

// Claim is what a replica gets when the consumer group assigns it
// partitions of an asset spread over replicas (ingest.spread): the new
// epoch of each partition, which its batches carry (Batch.Epochs), and the
// stored positions of the asset's topic, read after every batch of the
// partitions' previous owners committed or was refused.
type Claim struct {
	Epochs  map[int32]int64
	Offsets map[int32]int64
}

// PartitionRepository keeps who owns each partition of an asset spread
// over replicas. The store implements it for SQLite and PostgreSQL.
type PartitionRepository interface {
	// ClaimPartitions records owner as the owner of each of partitions of
	// the asset's topic and bumps each one's epoch (the first claim is
	// epoch 1), in one transaction that waits for the batches of the
	// partitions that are being stored. From its commit on, a batch with an
	// older epoch of one of them is refused (SaveBatch: ECONFLICT).
	ClaimPartitions(ctx context.Context, asset, topic, owner string, partitions []int32) (*Claim, error)
}
