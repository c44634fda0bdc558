-- +goose Up
-- Nothing changes here: SQLite's 00006 drops the CHECK (json_valid(body))
-- of artifacts, which SaveBatch now does in Go (or the poll's parse
-- workers, ingest.Batch's BodiesValid). A jsonb column parses its input
-- anyway, so PostgreSQL keeps refusing a body that is not JSON. The file
-- keeps both dialects' migration lists the same.
SELECT 1;

-- +goose Down
SELECT 1;
