-- +goose Up
-- Nothing to change: PostgreSQL stamps rows with their transaction here
-- (batches commit concurrently there), while SQLite has one writer, so its
-- ids commit in id order and a reader pages by id alone. The version
-- exists in both folders so the two stay at the same schema version.
SELECT 1;

-- +goose Down
SELECT 1;
