package ingest

import (
	"context"
	"encoding/json"
	"time"
)

// StoredContainer is a container as polls stored it, for a SOAR to pull.
type StoredContainer struct {
	// ID only grows: a container stored later has a higher one, so a
	// client pulling with SinceID set to the last ID it saw misses none,
	// with one exception. On PostgreSQL, batches of different assets
	// store at the same time, so a batch can commit a lower ID after a
	// client saw a higher one of another asset; batches of one asset
	// commit one after the other, so a pull per asset (Asset set) misses
	// none there either. SQLite stores one batch at a time.
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
	// Page (from 0) and PageSize select one page of the matching
	// containers in ID order; PageSize 0 selects them all, as the SOAR
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
// implements it for SQLite and PostgreSQL.
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
}
