package store

import (
	"context"
	"time"

	"github.com/soarkafka/soarkafka"
)

// SQLite's WAL grows with every commit until a checkpoint copies its pages
// back into the database file. Left to SQLite (wal_autocheckpoint), the
// commit that crosses the threshold runs the checkpoint itself: it writes
// and fsyncs the whole log while the poll that committed waits, on the one
// writer's path. The checkpointer runs them on a connection of its own
// instead, after the batches that grew the WAL, while the next batch is
// being written: a PASSIVE checkpoint does not block writers, and the
// writer starts the WAL over once a checkpoint has copied all of it.
//
// The connections keep wal_autocheckpoint as a backstop (4096 pages, see
// sqlitePragmas: 64 MiB of WAL at 16 KiB pages, four times SQLite's
// default), so the WAL stays bounded even if the checkpointer falls behind.

// checkpointEvery is the least time between two checkpoints: batches commit
// every few milliseconds, and a checkpoint per batch would fsync the
// database file as often.
const checkpointEvery = 250 * time.Millisecond

// checkpointer runs PASSIVE checkpoints of a SQLite database in the
// background when asked to.
type checkpointer struct {
	db     *DB
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func startCheckpointer(db *DB) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go c.loop(ctx)
	return c
}

// request asks for a checkpoint soon; it never blocks.
func (c *checkpointer) request() {
	if c == nil {
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// stop ends the loop and waits for a running checkpoint. SQLite checkpoints
// the whole WAL itself when the last connection closes.
func (c *checkpointer) stop() {
	if c == nil {
		return
	}
	c.cancel()
	<-c.done
}

func (c *checkpointer) loop(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		c.checkpoint(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(checkpointEvery):
		}
	}
}

// checkpoint runs one PASSIVE checkpoint. A failure is logged and left to
// the next one (or the backstop): the data is safe in the WAL meanwhile.
func (c *checkpointer) checkpoint(ctx context.Context) {
	defer soarkafka.Recover(ctx, c.db.logger, "SQLite checkpoint", nil)
	var busy, logFrames, checkpointed int
	err := c.db.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &checkpointed)
	if err != nil && ctx.Err() == nil {
		c.db.logger.WarnContext(ctx, "SQLite checkpoint failed; the WAL keeps the data and the next checkpoint retries", "error", err)
	}
}
