-- +goose Up
-- Batches commit concurrently (no lock serialises them), so ids no longer
-- commit in id order. Each container and artifact is stamped with the
-- transaction that wrote it (for an artifact added to a container written
-- by another transaction, the later of the two: see the store's
-- SaveBatch), and a reader pages by (tx, id), seeing only rows whose tx is
-- older than every transaction still in flight (docs/design.md, "Ordering
-- without a lock"). Rows stored before this migration get tx 0: they
-- committed before any stamped row, and a cursor given out before it
-- (ids only) is the same position with tx 0.
ALTER TABLE containers ADD COLUMN tx xid8 NOT NULL DEFAULT '0';
ALTER TABLE containers ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
ALTER TABLE artifacts ADD COLUMN tx xid8 NOT NULL DEFAULT '0';
ALTER TABLE artifacts ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
CREATE INDEX containers_asset_tx_id ON containers (asset, tx, id);
CREATE INDEX artifacts_asset_tx_id ON artifacts (asset, tx, id);

-- +goose Down
DROP INDEX artifacts_asset_tx_id;
DROP INDEX containers_asset_tx_id;
ALTER TABLE artifacts DROP COLUMN tx;
ALTER TABLE containers DROP COLUMN tx;
