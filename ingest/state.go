package ingest

import (
	"context"
	"time"
)

// Gap is a run of messages a poll could not read because the broker no
// longer had them (retention deleted them before they were ingested): the
// stored position was below the partition's log start. It is stored with
// the batch that moves the position past it, so it is never lost and never
// recorded twice.
type Gap struct {
	Partition int32 `json:"partition"`
	// From is the first missing offset (the stored position), To the last
	// (the log start minus one); Count is To - From + 1.
	From  int64 `json:"from"`
	To    int64 `json:"to"`
	Count int64 `json:"count"`
}

// DeadLetter is a message the parser failed on that a poll produced to the
// asset's dead-letter topic instead of storing it. It is stored with the
// batch that moves the position past it.
type DeadLetter struct {
	Partition int32
	Offset    int64
	// Topic is the dead-letter topic the message went to.
	Topic  string
	Parser string
	Error  string
}

// Poll kinds, as PollRecord.Kind.
const (
	PollScheduled = "scheduled" // the server's scheduler
	PollAction    = "action"    // the on poll action, continuing from the stored position
	PollNow       = "poll_now"  // the on poll action's poll now: from the beginning, position unchanged
	// PollContinuous is one period of the scheduler's continuous poll
	// (ingest.mode continuous).
	PollContinuous = "continuous"
)

// Poll results, as PollRecord.Status.
const (
	PollSucceeded = "success"
	PollFailed    = "failed"
)

// PollRecord is what one poll did, kept as the asset's last poll for the
// ingest status.
type PollRecord struct {
	Asset     string
	Topic     string
	Kind      string
	StartedAt time.Time
	Duration  time.Duration
	Status    string
	// Error is the failure, empty on success.
	Error string

	MessagesRead      int64
	ContainersCreated int64
	ArtifactsCreated  int64
	DuplicatesSkipped int64
	DeadLettered      int64
	Gaps              int64

	// Lag is every partition's lag together when the poll ended, nil when
	// it is not known (Kafka could not be asked, or the poll read from
	// elsewhere than the stored position, as poll now does).
	Lag *int64
}

// InHistory reports whether r is kept among the asset's last polls. A
// continuous poll records a period whether or not messages came (every
// minute by default, faster when configured); its idle periods would push
// every poll that did something out of the PollHistoryLimit kept within
// the hour, so only the periods that read messages or failed are kept.
// Every period still counts in the per-minute series (its lag sample), and
// is the asset's last poll.
func (r PollRecord) InHistory() bool {
	return r.Kind != PollContinuous || r.Status != PollSucceeded || r.MessagesRead > 0
}

// PollHistoryLimit is how many of an asset's last polls are kept.
const PollHistoryLimit = 50

// MinuteHistory is how far back the per-minute series is kept.
const MinuteHistory = 24 * time.Hour

// PollMinute is what an asset's polls did in one minute (UTC): the
// messages read by the polls that ended in it, and the last lag they knew,
// nil when none did.
type PollMinute struct {
	Minute   time.Time
	Messages int64
	Lag      *int64
}

// PollHistory is an asset's recent polls: the last PollHistoryLimit polls,
// newest first, and the per-minute series of the last MinuteHistory,
// oldest first (minutes without a poll are absent).
type PollHistory struct {
	Polls   []PollRecord
	Minutes []PollMinute
}

// GapRecord is a stored Gap.
type GapRecord struct {
	Gap
	Topic      string
	DetectedAt time.Time
}

// Status is where an asset's ingest stands, as the store knows it; the
// log-end offsets and the lag come from Kafka.
type Status struct {
	// Offsets is the stored next offset per partition of the asset's
	// topic (see Repository.Offsets).
	Offsets map[int32]int64
	// LastPoll is the asset's last finished poll (of any kind), nil when
	// it never polled.
	LastPoll *PollRecord
	// LastSuccess is the end of the last successful poll; zero when none.
	LastSuccess time.Time
	// Gaps are the asset's most recent gaps, newest first, at most
	// StatusGapLimit; GapCount and GapMessages count all of them.
	Gaps        []GapRecord
	GapCount    int64
	GapMessages int64
	// DeadLettered counts every message of the asset ever dead-lettered.
	DeadLettered int64
}

// StatusGapLimit is how many gaps Status lists.
const StatusGapLimit = 100

// Lease is who holds an asset's poll: one poll per asset at a time, in one
// process and across replicas sharing the database.
type Lease struct {
	Asset string
	// Holder identifies the poll holding it (replica and poll).
	Holder  string
	Expires time.Time
}

// StateRepository keeps the state of an asset's polls beside its batches.
// The store implements it for SQLite and PostgreSQL.
type StateRepository interface {
	// AcquireLease takes the asset's lease for holder until now + ttl when
	// it is free, expired, or held by holder already, and reports true. When
	// another holder has it, it reports false and that holder's lease.
	AcquireLease(ctx context.Context, asset, holder string, ttl time.Duration) (acquired bool, current Lease, err error)
	// RenewLease extends holder's lease to now + ttl. It is a
	// *soarkafka.Error ECONFLICT when holder no longer holds it (it expired
	// and another holder took it).
	RenewLease(ctx context.Context, asset, holder string, ttl time.Duration) error
	// ReleaseLease frees holder's lease; releasing a lease holder does not
	// hold is not an error.
	ReleaseLease(ctx context.Context, asset, holder string) error

	// RecordPoll stores r as the asset's last poll, adds it to the last
	// polls (when r.InHistory) and to its minute of the per-minute series,
	// and drops what falls out of their bounds.
	RecordPoll(ctx context.Context, r PollRecord) error
	// History returns the asset's last polls and per-minute series.
	History(ctx context.Context, asset string) (*PollHistory, error)
	// Status returns what the store knows of the asset's ingest: the
	// offsets on topic, the last poll, and the gaps and dead letters of
	// every topic the asset ingested.
	Status(ctx context.Context, asset, topic string) (*Status, error)
}
