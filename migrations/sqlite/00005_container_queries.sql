-- +goose Up
-- Indexes for the read API (GET /v1/containers, /v1/artifacts), which
-- answers in id order: a filter on label or severity walks its (column, id)
-- range in order, and a page of ten stops after ten rows instead of
-- sorting every match. created_at serves the start_time/end_time range.
-- An artifact list per asset reads (asset, id) in order; the UNIQUE
-- (asset, source_data_identifier) index would find the rows but not their
-- order. Per container, artifacts_container_id (00003) serves already.
CREATE INDEX containers_label_id ON containers (label, id);
CREATE INDEX containers_severity_id ON containers (severity, id);
CREATE INDEX containers_created_at ON containers (created_at);
CREATE INDEX artifacts_asset_id ON artifacts (asset, id);

-- +goose Down
DROP INDEX artifacts_asset_id;
DROP INDEX containers_created_at;
DROP INDEX containers_severity_id;
DROP INDEX containers_label_id;
