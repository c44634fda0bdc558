package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// StoredContainer is a container as polls stored it, for a SOAR to pull.
type StoredContainer struct {
	// ID only grows: a container stored later has a higher one. On
	// PostgreSQL batches commit concurrently, so ids do not commit in id
	// order; a list answers only ids below every id still in flight, so a
	// client pulling with SinceID set to the highest ID it saw misses none
	// (see QueryRepository). SQLite stores one batch at a time.
	ID    int64
	Asset string
	// SourceDataIdentifier is empty when the parser gave none.
	SourceDataIdentifier string
	// Name, Label and Severity are copied out of Body when it is stored.
	Name, Label, Severity string
	// Body is the SOAR /rest/container body the parser returned: a JSON
	// object, without artifacts.
	Body json.RawMessage
	// ArtifactCount is the number of artifacts the container holds now.
	ArtifactCount int
	// CreatedAt is when the container was stored; UpdatedAt when a later
	// batch last added artifacts to it (CreatedAt until then). Both UTC.
	CreatedAt, UpdatedAt time.Time
}

// StoredArtifact is an artifact as polls stored it.
type StoredArtifact struct {
	ID                   int64
	ContainerID          int64
	Asset                string
	SourceDataIdentifier string
	// Body is the SOAR /rest/artifact body: a JSON object.
	Body      json.RawMessage
	CreatedAt time.Time
}

// ContainerFilter selects containers. Its zero value selects every
// container, all at once; each field set narrows the selection.
type ContainerFilter struct {
	// Asset, Label and Severity, when not empty, must equal the
	// container's exactly (case-sensitive).
	Asset, Label, Severity string
	// SinceID selects containers whose ID is greater, for incremental
	// pulls; 0 selects from the first.
	SinceID int64
	// CreatedFrom and CreatedTo bound the time a container was stored:
	// from inclusive, to exclusive. A zero time leaves its end open.
	CreatedFrom, CreatedTo time.Time
	// NewestFirst orders the containers by ID descending (the console
	// shows the latest first); false is ID order, which SOAR's pulls
	// page by.
	NewestFirst bool
	// Page (from 0) and PageSize select one page of the matching
	// containers in that order; PageSize 0 selects them all, as the SOAR
	// REST API does, on page 0 (a later page is empty). Neither may be
	// negative.
	Page, PageSize int
}

// ArtifactFilter selects artifacts; its zero value selects them all.
type ArtifactFilter struct {
	// ContainerID, when not 0, selects that container's artifacts.
	ContainerID int64
	// Asset, when not empty, must equal the artifact's asset exactly.
	Asset string
	// SinceID selects artifacts whose ID is greater.
	SinceID int64
	// Page and PageSize are as in ContainerFilter.
	Page, PageSize int
}

// QueryRepository reads what polls stored, in ID order. The store package
// implements it for SQLite and PostgreSQL. A list answers only the rows
// whose id no transaction still in flight can fall below: on PostgreSQL,
// where batches commit concurrently, it first waits (briefly) for the
// transactions in flight when it starts, so paging with SinceID set to the
// highest ID seen skips nothing; when they outlast the wait, it is a
// *soarkafka.Error EUNAVAILABLE, never a silent gap.
type QueryRepository interface {
	// ListContainers returns the page of containers f selects, and how
	// many containers match f on all pages. A page past the last is
	// empty, not an error. A negative Page, PageSize or SinceID is a
	// *soarkafka.Error EINVALID.
	ListContainers(ctx context.Context, f ContainerFilter) ([]StoredContainer, int, error)
	// Container returns the container with that ID, or a *soarkafka.Error
	// ENOTFOUND.
	Container(ctx context.Context, id int64) (*StoredContainer, error)
	// ListArtifacts returns the page of artifacts f selects and how many
	// match f, as ListContainers does.
	ListArtifacts(ctx context.Context, f ArtifactFilter) ([]StoredArtifact, int, error)
	PullRepository
}

// PullCursor is a position in what polls stored, for a client that pulls
// everything new with it (GET /v1/pull): the position of the last
// container and of the last artifact the client has been given. A
// position is (transaction, id): on PostgreSQL batches commit
// concurrently, so ids do not commit in id order; rows are stamped with
// the transaction that wrote them and read in (transaction, id) order, only
// once every transaction before theirs has ended (see PullRepository). On
// SQLite, with one writer, the transaction parts stay 0 and a position is
// an id. The zero value is the beginning.
type PullCursor struct {
	ContainerTx, Container int64
	ArtifactTx, Artifact   int64
}

// Cursor texts. v1 (ids only) is what a server without transaction stamps
// gave out; it reads as the same ids with transactions 0, which is exactly
// where it was: rows stored before the stamps have transaction 0. v2 adds
// the transactions; a cursor whose transactions are 0 is still written v1.
const (
	pullCursorPrefix   = "v1-"
	pullCursorPrefixV2 = "v2-"
)

// String is the cursor as a client keeps it.
func (c PullCursor) String() string {
	if c.ContainerTx == 0 && c.ArtifactTx == 0 {
		return pullCursorPrefix + strconv.FormatInt(c.Container, 10) + "-" + strconv.FormatInt(c.Artifact, 10)
	}
	return pullCursorPrefixV2 + strconv.FormatInt(c.ContainerTx, 10) + "." + strconv.FormatInt(c.Container, 10) +
		"-" + strconv.FormatInt(c.ArtifactTx, 10) + "." + strconv.FormatInt(c.Artifact, 10)
}

// ParsePullCursor reads a cursor String wrote; "" is the beginning.
func ParsePullCursor(s string) (PullCursor, error) {
	if s == "" {
		return PullCursor{}, nil
	}
	bad := fmt.Errorf("%q is not a cursor of this server: give the cursor of a previous answer as it was, nothing for the beginning, or end", s)
	if rest, ok := strings.CutPrefix(s, pullCursorPrefixV2); ok {
		cs, as, ok := strings.Cut(rest, "-")
		ctx, c, ok1 := parsePosition(cs)
		atx, a, ok2 := parsePosition(as)
		if !ok || !ok1 || !ok2 {
			return PullCursor{}, bad
		}
		return PullCursor{ContainerTx: ctx, Container: c, ArtifactTx: atx, Artifact: a}, nil
	}
	rest, ok := strings.CutPrefix(s, pullCursorPrefix)
	cs, as, ok2 := strings.Cut(rest, "-")
	c, err1 := strconv.ParseInt(cs, 10, 64)
	a, err2 := strconv.ParseInt(as, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil || c < 0 || a < 0 {
		return PullCursor{}, bad
	}
	return PullCursor{Container: c, Artifact: a}, nil
}

// parsePosition reads "tx.id", both 0 or more.
func parsePosition(s string) (tx, id int64, ok bool) {
	ts, is, ok := strings.Cut(s, ".")
	tx, err1 := strconv.ParseInt(ts, 10, 64)
	id, err2 := strconv.ParseInt(is, 10, 64)
	return tx, id, ok && err1 == nil && err2 == nil && tx >= 0 && id >= 0
}

// PullRequest asks for what an asset's polls stored past Cursor.
type PullRequest struct {
	// Asset is the key the polls stored under: the asset's name, or
	// soar:<asset_id> for an inline configuration.
	Asset  string
	Cursor PullCursor
	// End asks for no items, only the cursor at the current end: a
	// client that starts "now" rather than from the beginning.
	End bool
	// MaxArtifacts and MaxContainers bound one answer (both at least 1).
	MaxArtifacts, MaxContainers int
}

// PullItem is one appearance of a container in an answer: the container as
// it is now, and those of its artifacts that are new since the cursor, in
// id order (none for a container created without artifacts).
type PullItem struct {
	Container StoredContainer
	Artifacts []StoredArtifact
}

// PullPage is one answer.
type PullPage struct {
	// Items are ordered by container id.
	Items []PullItem
	// Cursor is where the next request starts.
	Cursor PullCursor
	// More says items remain past Cursor: ask again at once.
	More bool
}

// PullRepository pages through what polls stored. The store package
// implements it for SQLite and PostgreSQL.
type PullRepository interface {
	// Pull answers the containers created and the artifacts stored past
	// req.Cursor, at most req.MaxArtifacts artifacts and req.MaxContainers
	// containers. A container appears in the first answer whose range
	// holds its creation, with its artifacts in that range; when
	// artifacts are added to it later it appears again, with those only.
	// Paging with the returned cursors gives every container creation and
	// every artifact exactly once, while polls of any asset, in any
	// replica, commit concurrently: an answer holds only rows whose
	// transaction, and every transaction before it, has ended, so nothing
	// commits later behind the cursor. It first waits (briefly, see the
	// store) for the transactions in flight when it starts, so a batch
	// stored before the request is in its answer. A bad request (no asset, a bound below
	// 1) is a *soarkafka.Error EINVALID.
	Pull(ctx context.Context, req PullRequest) (*PullPage, error)
}
