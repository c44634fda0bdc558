package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
)

var _ assets.Repository = (*DB)(nil)

const assetColumns = "id, name, description, config, version, created_at, updated_at"

// CreateAsset inserts a and sets its ID, Version, CreatedAt and UpdatedAt.
// A name in use already is an ECONFLICT error.
func (db *DB) CreateAsset(ctx context.Context, a *assets.Asset) error {
	config, err := encodeConfig(a.Config)
	if err != nil {
		return fmt.Errorf("store: create asset %q: %w", a.Name, err)
	}
	now := db.now()
	var id, version int64
	unlock, err := db.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	err = db.db.QueryRowContext(ctx, db.dialect.rebind(`
		INSERT INTO assets (name, description, config, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		RETURNING id, version`),
		a.Name, a.Description, config, db.dialect.timeArg(now),
	).Scan(&id, &version)
	if isUniqueViolation(err) {
		return soarkafka.Errorf(soarkafka.ECONFLICT, "asset %q already exists", a.Name)
	} else if err != nil {
		return fmt.Errorf("store: create asset %q: %w", a.Name, err)
	}
	a.ID, a.Version, a.CreatedAt, a.UpdatedAt = id, version, now, now
	return nil
}

// Asset returns the asset with that name, or an ENOTFOUND error.
func (db *DB) Asset(ctx context.Context, name string) (*assets.Asset, error) {
	a := &assets.Asset{}
	err := scanAsset(db.db.QueryRowContext(ctx, db.dialect.rebind(
		`SELECT `+assetColumns+` FROM assets WHERE name = $1`), name), a)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, soarkafka.Errorf(soarkafka.ENOTFOUND, "asset %q not found", name)
	} else if err != nil {
		return nil, fmt.Errorf("store: read asset %q: %w", name, err)
	}
	return a, nil
}

// Assets returns every asset, ordered by name.
func (db *DB) Assets(ctx context.Context) ([]*assets.Asset, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+assetColumns+` FROM assets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list assets: %w", err)
	}
	defer rows.Close()
	var list []*assets.Asset
	for rows.Next() {
		a := &assets.Asset{}
		if err := scanAsset(rows, a); err != nil {
			return nil, fmt.Errorf("store: list assets: %w", err)
		}
		list = append(list, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list assets: %w", err)
	}
	return list, nil
}

// UpdateAsset replaces the description and config of the asset named a.Name,
// bumps its Version, sets UpdatedAt, and fills a from the stored row. An
// unknown name is an ENOTFOUND error.
func (db *DB) UpdateAsset(ctx context.Context, a *assets.Asset) error {
	config, err := encodeConfig(a.Config)
	if err != nil {
		return fmt.Errorf("store: update asset %q: %w", a.Name, err)
	}
	// One statement, so two concurrent updates each bump the version once.
	var stored assets.Asset
	unlock, err := db.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	err = scanAsset(db.db.QueryRowContext(ctx, db.dialect.rebind(`
		UPDATE assets SET description = $1, config = $2, version = version + 1, updated_at = $3
		WHERE name = $4
		RETURNING `+assetColumns),
		a.Description, config, db.dialect.timeArg(db.now()), a.Name), &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return soarkafka.Errorf(soarkafka.ENOTFOUND, "asset %q not found", a.Name)
	} else if err != nil {
		return fmt.Errorf("store: update asset %q: %w", a.Name, err)
	}
	*a = stored
	return nil
}

// DeleteAsset removes the asset with that name, or returns an ENOTFOUND error.
func (db *DB) DeleteAsset(ctx context.Context, name string) error {
	res, err := db.exec(ctx, db.dialect.rebind(`DELETE FROM assets WHERE name = $1`), name)
	if err != nil {
		return fmt.Errorf("store: delete asset %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: delete asset %q: %w", name, err)
	} else if n == 0 {
		return soarkafka.Errorf(soarkafka.ENOTFOUND, "asset %q not found", name)
	}
	return nil
}

// scanAsset reads the assetColumns of one row into a.
func scanAsset(row interface{ Scan(...any) error }, a *assets.Asset) error {
	var config []byte
	err := row.Scan(&a.ID, &a.Name, &a.Description, &config, &a.Version,
		timestamp{&a.CreatedAt}, timestamp{&a.UpdatedAt})
	if err != nil {
		return err
	}
	// Plain decoding, numbers as float64: the same values the web layer
	// decodes from a request body.
	if err := json.Unmarshal(config, &a.Config); err != nil {
		return fmt.Errorf("asset %q: stored config is not a JSON object: %w", a.Name, err)
	}
	return nil
}

// encodeConfig returns the JSON text of a config; nil is stored as {}.
func encodeConfig(config map[string]any) (string, error) {
	if config == nil {
		return "{}", nil
	}
	b, err := json.Marshal(config)
	if err != nil {
		return "", fmt.Errorf("encode config: %w", err)
	}
	return string(b), nil
}
