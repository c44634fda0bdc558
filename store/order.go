package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka"
)

// Ordering without a lock (docs/design.md). On PostgreSQL batches commit
// concurrently, so a lower id can commit after a higher one. Readers that
// page must never step past a row that commits later:
//   - Pull pages by (transaction, id) and reads only rows whose
//     transaction is older than every transaction in flight (the
//     snapshot's xmin): those all ended, and whatever commits later has a
//     transaction at least that xmin, past any cursor given out now;
//   - the list routes page by id, so they answer only ids at most the
//     sequence's value read before every transaction then in flight has
//     ended (listBound): every id up to it is committed or never will be.
//
// Both first wait for the transactions in flight when they start (settle),
// so what a caller stored before asking is in the answer. SQLite has one
// writer: ids commit in order, and none of this applies.

// settleWait bounds how long a reader waits for the batches in flight when
// it starts. A batch lasts milliseconds; one open longer (a stalled
// replica's) makes a pull answer only what committed before it, and a list
// refuse to answer.
const settleWait = 2 * time.Second

// Batches in flight. A SaveBatch transaction on PostgreSQL takes the
// schema's ingest key as a shared advisory lock before it has a
// transaction id (batchWrite.fence): shared, so batches never wait for each
// other on it, and pg_locks shows which transactions are batches of this
// schema. Readers wait for and order by those alone: the snapshot's own
// xmin would be the oldest writing transaction of the whole cluster, any
// schema, any database.
const batchesInFlight = `SELECT COALESCE(string_agg(x.transactionid::text, ','), ''), pg_snapshot_xmax(pg_current_snapshot())::text::bigint
	FROM pg_locks l JOIN pg_locks x ON x.virtualtransaction = l.virtualtransaction AND x.locktype = 'transactionid'
	WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid = $1 AND l.objid = $2
	AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`

// inFlight is what batchesInFlight read: the (32-bit) transaction ids of
// the schema's batches then in flight, and the next transaction id to be
// given out when it read them.
type inFlight struct {
	xids []int64
	xmax int64
}

func (db *DB) readInFlight(ctx context.Context) (inFlight, error) {
	key := uint64(ingestLockKey(db.schema))
	var f inFlight
	var xids string
	err := db.db.QueryRowContext(ctx, batchesInFlight, int64(key>>32), int64(key&0xffffffff)).Scan(&xids, &f.xmax)
	if err != nil {
		return f, fmt.Errorf("read the batches in flight: %w", err)
	}
	for x := range strings.SplitSeq(xids, ",") {
		if x == "" {
			continue
		}
		id, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return f, fmt.Errorf("read the batches in flight: transaction %q: %w", x, err)
		}
		f.xids = append(f.xids, id)
	}
	return f, nil
}

// settle waits until the schema's batches in flight when it is called have
// ended, and reports whether they did within settleWait. True at once on
// SQLite.
func (db *DB) settle(ctx context.Context) (bool, error) {
	if db.dialect.name != "postgres" {
		return true, nil
	}
	f, err := db.readInFlight(ctx)
	if err != nil {
		return false, err
	}
	deadline := time.Now().Add(settleWait)
	pause := 500 * time.Microsecond
	for len(f.xids) > 0 {
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 20*time.Millisecond)
		now, err := db.readInFlight(ctx)
		if err != nil {
			return false, err
		}
		f.xids = slices.DeleteFunc(f.xids, func(x int64) bool { return !slices.Contains(now.xids, x) })
	}
	return true, nil
}

// listBound returns the highest id of table (containers or artifacts) that
// a list may answer on PostgreSQL: every id up to it is committed or never
// will be. It is the sequence's value read before settle, since SaveBatch
// draws ids only once its transaction has an id and holds the batches' lock
// (batchWrite.fence): a transaction holding an id up to it was a batch in
// flight when settle started. Batches outlasting settleWait are an
// EUNAVAILABLE error. On SQLite it is the largest int64 (one writer).
func (db *DB) listBound(ctx context.Context, table string) (int64, error) {
	if db.dialect.name != "postgres" {
		return 1<<63 - 1, nil
	}
	var (
		last   int64
		called bool
	)
	// table is a constant of ours.
	if err := db.db.QueryRowContext(ctx, `SELECT last_value, is_called FROM `+table+`_id_seq`).Scan(&last, &called); err != nil {
		return 0, fmt.Errorf("read the last %s id: %w", table, err)
	}
	if !called {
		last = 0
	}
	ok, err := db.settle(ctx)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, soarkafka.Errorf(soarkafka.EUNAVAILABLE,
			"%s: batches have been storing for over %v, so ids below theirs may still commit, and a list answers only ids nothing can commit below: try again; a replica may be stalled",
			table, settleWait)
	}
	return last, nil
}

// position is where a row comes in a reader's order: (transaction, id) on
// PostgreSQL, (0, id) on SQLite.
type position struct{ tx, id int64 }

// after reports whether p comes after q.
func (p position) after(q position) bool {
	return p.tx > q.tx || (p.tx == q.tx && p.id > q.id)
}

// horizon starts the read transaction tx's snapshot and returns the
// transaction below which rows are read in it, on PostgreSQL (0 on SQLite,
// where it is not used): the oldest batch in flight in the snapshot, or f's
// xmax. f is read before the snapshot: a batch in flight in the snapshot
// with an id below f.xmax had that id when f was read, and its lock before,
// so it is in f; ids given out later are at least f.xmax. Every row below
// the horizon has committed, and is in the snapshot.
func (db *DB) horizon(ctx context.Context, tx *sql.Tx, f inFlight) (int64, error) {
	if db.dialect.name != "postgres" {
		return 0, nil
	}
	var h int64
	if err := tx.QueryRowContext(ctx, `SELECT LEAST(COALESCE(min(x::text::bigint), $2), $2)
		FROM pg_snapshot_xip(pg_current_snapshot()) AS x
		WHERE (x::text::bigint & 4294967295) = ANY($1::bigint[])`, f.xids, f.xmax).Scan(&h); err != nil {
		return 0, fmt.Errorf("read the snapshot's horizon: %w", err)
	}
	return h, nil
}

// ordered is the SQL of a page in reading order of table alias a, past
// position p and below horizon h, its arguments numbered from $n: the
// condition, its arguments, the ORDER BY and the column of a row's
// transaction.
type ordered struct {
	cond  string
	args  []any
	order string
	txCol string
}

func (db *DB) ordered(a string, p position, h int64, n int) ordered {
	if db.dialect.name != "postgres" {
		return ordered{cond: a + ".id > $" + strconv.Itoa(n), args: []any{p.id}, order: a + ".id", txCol: "0"}
	}
	return ordered{
		cond:  fmt.Sprintf("(%[1]s.tx, %[1]s.id) > ($%[2]d::text::xid8, $%[3]d) AND %[1]s.tx < $%[4]d::text::xid8", a, n, n+1, n+2),
		args:  []any{strconv.FormatInt(p.tx, 10), p.id, strconv.FormatInt(h, 10)},
		order: a + ".tx, " + a + ".id",
		txCol: a + ".tx::text::bigint",
	}
}
