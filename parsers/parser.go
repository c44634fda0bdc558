// Package parsers owns parse_messages parsers: the model of stored,
// versioned user parsers, and (in sandbox/ and bundled/) how parsers run.
package parsers

import (
	"context"
	"time"
)

// Parser is a stored user parser at its current version.
type Parser struct {
	ID          int64
	Name        string
	Description string
	Version     int64 // the current version: 1 at creation, one more per update
	Source      string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Version is one saved version of a parser; every version is kept.
type Version struct {
	Parser    string
	Version   int64
	Source    string
	CreatedAt time.Time
}

// Repository stores parsers. The store package implements it for SQLite
// and PostgreSQL. Errors: *soarkafka.Error ENOTFOUND for an unknown name or
// version, ECONFLICT for a name that exists already or a parser in use.
type Repository interface {
	// CreateParser inserts p as version 1; it sets ID, Version, CreatedAt
	// and UpdatedAt.
	CreateParser(ctx context.Context, p *Parser) error
	// Parser returns the named parser at its current version.
	Parser(ctx context.Context, name string) (*Parser, error)
	// Parsers returns every parser at its current version, by name.
	Parsers(ctx context.Context) ([]*Parser, error)
	// UpdateParser saves p.Source as the next version of the parser named
	// p.Name, with p.Description; it fills p from the row.
	UpdateParser(ctx context.Context, p *Parser) error
	// ParserVersion returns one version of the named parser.
	ParserVersion(ctx context.Context, name string, version int64) (*Version, error)
	// ParserVersions returns every version of the named parser, oldest
	// first.
	ParserVersions(ctx context.Context, name string) ([]*Version, error)
	// DeleteParser removes the parser and its versions; refused (ECONFLICT,
	// naming the assets) while an asset's message_parser names it.
	DeleteParser(ctx context.Context, name string) error
}
