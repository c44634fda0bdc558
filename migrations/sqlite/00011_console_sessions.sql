-- +goose Up
-- The web console's sessions, in the store so that every replica on the
-- database knows them (a person stays signed in whichever replica answers,
-- and signing out ends the session on all of them). id_hash is the hex
-- SHA-256 of the cookie's id: the id itself is never stored, so a copy of
-- this table signs no one in. Expired rows are deleted on read and on each
-- sign-in, which also keeps at most 10,000 rows (least recently seen go).
-- Timestamps are TEXT in the fixed-width layout of the store, so text order
-- is time order.
CREATE TABLE console_sessions (
    id_hash      TEXT NOT NULL PRIMARY KEY CHECK (length(id_hash) = 64),
    csrf         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
);
CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen_at);

-- +goose Down
DROP TABLE console_sessions;
