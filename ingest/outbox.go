package ingest

import "time"

// Outbox row states.
const (
	// OutboxPending rows wait to be sent at their NextAttemptAt.
	OutboxPending = "pending"
	// OutboxSending marks a row whose request is (or was) in flight: it is
	// stored before the request, so a row found sending after a crash or a
	// lost answer is one whose outcome is unknown and must be checked
	// against the SOAR before anything is sent again.
	OutboxSending   = "sending"
	OutboxDelivered = "delivered"
	// OutboxDead rows were refused by the SOAR (a 4xx other than 401/403);
	// they wait for a retry by hand.
	OutboxDead = "dead"
)

// OutboxRow is one batch's part of one container, to deliver: a batch of
// an asset in push mode (Batch.Outbox) writes one per container it
// created or added artifacts to, in its own transaction.
type OutboxRow struct {
	ID          int64
	Asset       string
	ContainerID int64
	// FirstArtifactID and LastArtifactID bound the ids of the artifacts
	// the batch added to the container; both 0 when it added none (a
	// container created without artifacts).
	FirstArtifactID, LastArtifactID int64
	// MessageTime is the oldest Kafka timestamp of the batch's messages;
	// zero when unknown.
	MessageTime   time.Time
	CreatedAt     time.Time
	State         string
	Attempts      int
	LastError     string
	NextAttemptAt time.Time
}

// DeliveryStats is where an asset's push delivery stands.
type DeliveryStats struct {
	Pending, Sending, Delivered, Dead int64
	// LastError is the error of the most recently failed row still
	// pending or dead; empty when none failed.
	LastError string
	// OldestPending is when the oldest row not yet delivered (pending or
	// sending) was stored; zero when none waits.
	OldestPending time.Time
}
