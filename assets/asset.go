package assets

import (
	"context"
	"time"
)

// Asset is a stored asset: a named configuration. Config is the stored
// document, with secret fields sealed (see Sealer); it is never handed to a
// Kafka client as is (Service.Resolve opens it).
type Asset struct {
	ID          int64
	Name        string
	Description string
	Config      map[string]any
	// Version starts at 1 and grows by one on every update, so holders of a
	// client built from an asset can tell it changed.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Repository stores assets. The store package implements it for SQLite and
// PostgreSQL. Errors: *soarkafka.Error ENOTFOUND for an unknown name,
// ECONFLICT for a name that exists already.
type Repository interface {
	// CreateAsset inserts a; it sets ID, Version (1), CreatedAt and UpdatedAt.
	CreateAsset(ctx context.Context, a *Asset) error
	// Asset returns the asset with that name.
	Asset(ctx context.Context, name string) (*Asset, error)
	// Assets returns every asset, ordered by name.
	Assets(ctx context.Context) ([]*Asset, error)
	// UpdateAsset replaces the description and config of the asset named
	// a.Name; it bumps Version and sets UpdatedAt, and fills a from the row.
	UpdateAsset(ctx context.Context, a *Asset) error
	// DeleteAsset removes the asset with that name.
	DeleteAsset(ctx context.Context, name string) error
}
