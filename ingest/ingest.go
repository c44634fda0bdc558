package ingest

import (
	"context"
	"encoding/json"
	"time"
)

// Batch is what one poll step stores, all or nothing: the containers the
// parser returned for a run of messages, and the positions reached on the
// asset's topic once they are stored.
type Batch struct {
	Asset      string
	Topic      string
	Containers []Container
	// Offsets are the positions to store once the containers are. An
	// offset never moves backwards: a lower Next than the stored one is
	// ignored. Poll now leaves Offsets empty.
	Offsets []Offset
	// Gaps and DeadLetters are stored with the batch whose offsets move
	// past them, in the same transaction.
	Gaps        []Gap
	DeadLetters []DeadLetter
	// LeaseHolder, when not empty, fences the batch: it is stored only if
	// LeaseHolder still holds the asset's lease (see StateRepository),
	// else SaveBatch is a *soarkafka.Error ECONFLICT and nothing is
	// stored. A poll whose lease expired and was taken over cannot write.
	LeaseHolder string
	// Epochs, when not nil, fences the batch per partition: it is stored
	// only if each partition's epoch in the store is still the one given
	// (see PartitionRepository), else SaveBatch is a *soarkafka.Error
	// ECONFLICT and nothing is stored. Every partition the batch's
	// offsets, gaps and dead letters name must have one. A replica that
	// lost a partition to another cannot write it again.
	Epochs map[int32]int64
	// ContainerLabel is stored as the label of each container created by
	// the batch whose body sets none (absent, null or ""): the asset's
	// ingest.container_label, since SOAR refuses a container without a
	// label. Empty leaves such a container's label empty.
	ContainerLabel string
	// BodiesValid says every artifact body is known to be valid JSON: the
	// caller encoded it with a JSON encoder or cut it out of input that a
	// validating JSON decoder read, as the poll does in its parse workers.
	// The store then does not check the bodies again on its one writer,
	// whose time per artifact sets the ingest rate. Without it SaveBatch checks each one, and a body that is
	// not valid JSON fails the batch (EINVALID, naming the field).
	BodiesValid bool
	// Outbox asks for the batch's containers to be pushed to the SOAR: in
	// the same transaction, one outbox row (OutboxRow) per container the
	// batch created or added artifacts to. The poll sets it for an asset
	// in push mode. A replayed batch that stores nothing new writes none.
	Outbox bool
	// MessageTime is the oldest Kafka timestamp of the batch's messages,
	// kept on its outbox rows for the end-to-end latency; zero when
	// unknown.
	MessageTime time.Time
}

// Container is one container and the artifacts to add to it.
type Container struct {
	// SourceDataIdentifier, when not empty, identifies the container per
	// asset: a container whose identifier exists already receives the new
	// artifacts instead of being created again, as SOAR does on save. It
	// wins over any source_data_identifier in Body.
	SourceDataIdentifier string
	// Body is the SOAR /rest/container body without its artifacts: a JSON
	// object.
	Body      json.RawMessage
	Artifacts []Artifact
}

// Artifact is one artifact.
type Artifact struct {
	// SourceDataIdentifier identifies the artifact per asset and is
	// required: an artifact whose identifier exists already is a duplicate
	// and is skipped.
	SourceDataIdentifier string
	// Body is the SOAR /rest/artifact body: a JSON object.
	Body json.RawMessage
}

// Offset is the position reached on one partition.
type Offset struct {
	Partition int32
	// Next is the next offset to read: the last stored message's plus one.
	Next int64
}

// Outcome is what saving a batch did.
type Outcome struct {
	ContainersCreated int
	// ContainersUpdated counts containers that existed before the batch and
	// received at least one new artifact.
	ContainersUpdated int
	ArtifactsCreated  int
	// DuplicatesSkipped counts artifacts whose source_data_identifier the
	// asset had already (from an earlier batch or earlier in this one).
	DuplicatesSkipped int
	// Containers lists the containers created or updated, in the order the
	// batch first names them; a container reused without a new artifact is
	// not listed.
	Containers []ContainerRef
}

// ContainerRef names one container a batch created or updated.
type ContainerRef struct {
	ID   int64
	Name string
	// Artifacts is the number of artifacts this batch added to it.
	Artifacts int
	// Created says the batch created the container; false means it existed
	// and received new artifacts.
	Created bool
}

// Repository stores batches and the positions they reach. The store
// package implements it for SQLite and PostgreSQL.
type Repository interface {
	// SaveBatch stores b in one transaction: its containers, artifacts and
	// offsets are all stored, or, on any error, none of them. Saving the
	// same batch again stores nothing new. A batch that is not well formed
	// (no asset or topic, a body that is not a JSON object, an artifact
	// without source_data_identifier, a negative partition or offset, a gap
	// whose count is not To - From + 1, a dead letter without topic) is a
	// *soarkafka.Error EINVALID and nothing is stored.
	SaveBatch(ctx context.Context, b *Batch) (*Outcome, error)
	// Offsets returns the stored next offset of each partition of the
	// asset's topic; a partition never saved is absent.
	Offsets(ctx context.Context, asset, topic string) (map[int32]int64, error)
}
