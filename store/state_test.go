package store_test

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
)

// clock is a settable DB.Now, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(db *store.DB) *clock {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	db.Now = c.Now
	return c
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// expireLease makes the asset's lease expired. SQLite leases follow the
// store's clock: it moves c past the lease. PostgreSQL leases follow the
// database's clock, which a test cannot move: the lease's expiry moves into
// the past instead.
func expireLease(t *testing.T, db *store.DB, raw *sql.DB, c *clock, asset string, ttl time.Duration) {
	t.Helper()
	if db.Dialect() == "sqlite" {
		c.Add(ttl)
		return
	}
	if _, err := raw.ExecContext(t.Context(),
		"UPDATE ingest_leases SET expires_at = now() - interval '1 millisecond' WHERE asset = $1", asset); err != nil {
		t.Fatal(err)
	}
}

func acquire(t *testing.T, db *store.DB, asset, holder string, ttl time.Duration) (bool, ingest.Lease) {
	t.Helper()
	ok, current, err := db.AcquireLease(t.Context(), asset, holder, ttl)
	if err != nil {
		t.Fatalf("AcquireLease(%s, %s): %v", asset, holder, err)
	}
	return ok, current
}

// wantExpiry checks a lease's expiry: exactly the store's clock plus ttl on
// SQLite; on PostgreSQL, the database's clock plus ttl, so close to this
// process's (the database runs on this machine).
func wantExpiry(t *testing.T, db *store.DB, c *clock, l ingest.Lease, ttl time.Duration) {
	t.Helper()
	if db.Dialect() == "sqlite" {
		if want := c.Now().Add(ttl); !l.Expires.Equal(want) {
			t.Fatalf("lease expires %s, want %s", l.Expires, want)
		}
		return
	}
	if d := time.Until(l.Expires) - ttl; d > 2*time.Second || d < -2*time.Second {
		t.Fatalf("lease expires %s, %s off now + %s", l.Expires, d, ttl)
	}
}

func TestLeaseAcquireRenewRelease(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		c := newClock(db)
		const ttl = time.Minute

		ok, l := acquire(t, db, "prod", "replica-a/1", ttl)
		if !ok || l.Asset != "prod" || l.Holder != "replica-a/1" {
			t.Fatalf("first acquire = %v %+v, want prod's lease for replica-a/1", ok, l)
		}
		wantExpiry(t, db, c, l, ttl)

		// Held: another holder is told who has it, until when.
		ok, current := acquire(t, db, "prod", "replica-b/1", ttl)
		if ok || current != l {
			t.Fatalf("acquire of a held lease = %v %+v, want false and %+v", ok, current, l)
		}
		// Another asset is free.
		if ok, _ := acquire(t, db, "other", "replica-b/1", ttl); !ok {
			t.Fatal("the lease of another asset is not free")
		}

		// The holder acquiring again extends it.
		c.Add(10 * time.Second)
		ok, again := acquire(t, db, "prod", "replica-a/1", ttl)
		if !ok || again.Holder != "replica-a/1" || again.Expires.Before(l.Expires) {
			t.Fatalf("acquire by the holder = %v %+v, want it extended from %s", ok, again, l.Expires)
		}
		wantExpiry(t, db, c, again, ttl)

		c.Add(10 * time.Second)
		if err := db.RenewLease(t.Context(), "prod", "replica-a/1", 2*ttl); err != nil {
			t.Fatal(err)
		}
		_, current = acquire(t, db, "prod", "replica-b/1", ttl)
		if current.Holder != "replica-a/1" {
			t.Fatalf("after renewal the lease is %+v", current)
		}
		wantExpiry(t, db, c, current, 2*ttl)

		// Renewing a lease one does not hold is a conflict.
		wantCode(t, db.RenewLease(t.Context(), "prod", "replica-b/1", ttl), soarkafka.ECONFLICT)
		wantCode(t, db.RenewLease(t.Context(), "never-leased", "replica-b/1", ttl), soarkafka.ECONFLICT)

		// Releasing a lease one does not hold is no error and frees nothing.
		if err := db.ReleaseLease(t.Context(), "prod", "replica-b/1"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := acquire(t, db, "prod", "replica-b/1", ttl); ok {
			t.Fatal("a release by another holder freed the lease")
		}
		if err := db.ReleaseLease(t.Context(), "prod", "replica-a/1"); err != nil {
			t.Fatal(err)
		}
		if err := db.ReleaseLease(t.Context(), "prod", "replica-a/1"); err != nil {
			t.Fatalf("second release: %v", err)
		}
		// Released: the next holder takes it at once; the old holder can
		// no longer renew it.
		if ok, l := acquire(t, db, "prod", "replica-b/1", ttl); !ok || l.Holder != "replica-b/1" {
			t.Fatalf("acquire after release = %v %+v", ok, l)
		}
		wantCode(t, db.RenewLease(t.Context(), "prod", "replica-a/1", ttl), soarkafka.ECONFLICT)
	})
}

func TestLeaseInvalid(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		_, _, err := db.AcquireLease(t.Context(), "", "", 0)
		wantCode(t, err, soarkafka.EINVALID)
		for _, field := range []string{"asset: is empty", "holder: is empty", "ttl: 0s"} {
			if !strings.Contains(err.Error(), field) {
				t.Errorf("error %q does not name %s", err, field)
			}
		}
		wantCode(t, db.RenewLease(t.Context(), "prod", "a", -time.Second), soarkafka.EINVALID)
	})
}

// An expired lease is free to take; its old holder then can neither renew
// it nor take it back.
func TestLeaseExpiryAndTakeover(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		c := newClock(db)
		const ttl = time.Minute

		acquire(t, db, "prod", "replica-a/1", ttl)
		expireLease(t, db, raw, c, "prod", ttl)
		// Expired but not taken: still its holder's to renew, since nobody
		// else can have written meanwhile.
		if err := db.RenewLease(t.Context(), "prod", "replica-a/1", ttl); err != nil {
			t.Fatalf("renew of an expired lease nobody took: %v", err)
		}
		if ok, _ := acquire(t, db, "prod", "replica-b/1", ttl); ok {
			t.Fatal("a renewed lease was taken")
		}

		expireLease(t, db, raw, c, "prod", ttl)
		ok, l := acquire(t, db, "prod", "replica-b/1", ttl)
		if !ok || l.Holder != "replica-b/1" {
			t.Fatalf("acquire of an expired lease = %v %+v, want it taken", ok, l)
		}
		wantExpiry(t, db, c, l, ttl)
		err := db.RenewLease(t.Context(), "prod", "replica-a/1", ttl)
		wantCode(t, err, soarkafka.ECONFLICT)
		if !strings.Contains(err.Error(), `"prod"`) || !strings.Contains(err.Error(), "replica-a/1") {
			t.Errorf("renew error %q does not name the asset and the holder", err)
		}
		if ok, current := acquire(t, db, "prod", "replica-a/1", ttl); ok || current != l {
			t.Fatalf("old holder's acquire = %v %+v, want false and %+v", ok, current, l)
		}
		// The old holder's release leaves the new holder's lease.
		if err := db.ReleaseLease(t.Context(), "prod", "replica-a/1"); err != nil {
			t.Fatal(err)
		}
		if err := db.RenewLease(t.Context(), "prod", "replica-b/1", ttl); err != nil {
			t.Fatalf("new holder's renew after the old one's release: %v", err)
		}
	})
}

// Leases follow the clock documented for each dialect: on SQLite the
// store's (DB.Now), to the microsecond; on PostgreSQL the database's, which
// DB.Now does not move, so replicas with skewed clocks agree.
func TestLeaseClock(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		c := newClock(db)
		if db.Dialect() == "sqlite" {
			const ttl = time.Minute
			acquire(t, db, "prod", "a", ttl)
			c.Add(ttl - time.Microsecond)
			if ok, _ := acquire(t, db, "prod", "b", ttl); ok {
				t.Fatal("lease taken a microsecond before it expires")
			}
			c.Add(time.Microsecond)
			if ok, _ := acquire(t, db, "prod", "b", ttl); !ok {
				t.Fatal("lease not free when it expires")
			}
			return
		}

		const ttl = 300 * time.Millisecond
		acquire(t, db, "prod", "a", ttl)
		// A replica whose clock runs an hour ahead still sees it held.
		c.Add(time.Hour)
		if ok, _ := acquire(t, db, "prod", "b", ttl); ok {
			t.Fatal("a replica with its clock ahead took a held lease")
		}
		time.Sleep(ttl + 100*time.Millisecond)
		ok, l := acquire(t, db, "prod", "b", ttl)
		if !ok {
			t.Fatal("lease not free once the database's clock passed its expiry")
		}
		wantExpiry(t, db, c, l, ttl)
		wantCode(t, db.RenewLease(t.Context(), "prod", "a", ttl), soarkafka.ECONFLICT)
	})
}

// Of concurrent acquirers, on one store handle or several (replicas),
// exactly one wins, and every other is told the winner's lease.
func TestLeaseConcurrentAcquirers(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		dbs := []*store.DB{openMigrated(t, url), open(t, url, nil)}
		const acquirers = 10
		type result struct {
			holder  string
			ok      bool
			current ingest.Lease
		}
		results := make([]result, acquirers)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		for i := range acquirers {
			wg.Go(func() {
				<-start
				holder := fmt.Sprintf("replica-%d/1", i)
				ok, current, err := dbs[i%len(dbs)].AcquireLease(t.Context(), "prod", holder, time.Minute)
				if err != nil {
					t.Error(err)
				}
				results[i] = result{holder, ok, current}
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		var winners []result
		for _, r := range results {
			if r.ok {
				winners = append(winners, r)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("%d acquirers won: %+v", len(winners), results)
		}
		won := winners[0]
		if won.current.Holder != won.holder {
			t.Fatalf("winner %s got the lease of %s", won.holder, won.current.Holder)
		}
		for _, r := range results {
			if !r.ok && r.current != won.current {
				t.Errorf("%s lost and was told %+v, want the winner's %+v", r.holder, r.current, won.current)
			}
		}
	})
}

// stateBatch has a container, an offset, a gap and a dead letter.
func stateBatch(asset, holder string) *ingest.Batch {
	return &ingest.Batch{Asset: asset, Topic: "events", LeaseHolder: holder,
		Containers:  []ingest.Container{container("c-"+holder, "one", "a-"+holder)},
		Offsets:     []ingest.Offset{{Partition: 0, Next: 20}},
		Gaps:        []ingest.Gap{{Partition: 0, From: 3, To: 9, Count: 7}},
		DeadLetters: []ingest.DeadLetter{{Partition: 0, Offset: 12, Topic: "events.dlq", Parser: "p", Error: "bad"}},
	}
}

// stateRows is everything a batch writes for an asset.
type stateRows struct{ containers, artifacts, offsets, gaps, deadLetters int }

func countState(t *testing.T, raw *sql.DB, asset string) stateRows {
	t.Helper()
	n := func(table string) int {
		return count(t, raw, "SELECT count(*) FROM "+table+" WHERE asset = '"+asset+"'")
	}
	return stateRows{n("containers"), n("artifacts"), n("ingest_offsets"), n("ingest_gaps"), n("ingest_dead_letters")}
}

// A batch whose poll lost its lease stores nothing; the poll that took the
// lease over stores its own.
func TestSaveBatchFencedByLease(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		c := newClock(db)
		const ttl = time.Minute

		acquire(t, db, "prod", "replica-a/1", ttl)
		saveBatch(t, db, stateBatch("prod", "replica-a/1"))
		stored := stateRows{1, 1, 1, 1, 1}
		if got := countState(t, raw, "prod"); got != stored {
			t.Fatalf("after the holder's batch: %+v, want %+v", got, stored)
		}

		// A holder that never held the lease cannot write.
		b := stateBatch("prod", "replica-x/1")
		b.Offsets = []ingest.Offset{{Partition: 0, Next: 40}}
		_, err := db.SaveBatch(t.Context(), b)
		wantCode(t, err, soarkafka.ECONFLICT)

		// Expired, even with nobody taking it over yet: the fence is strict,
		// since a taker may be about to read the position.
		expireLease(t, db, raw, c, "prod", ttl)
		b = stateBatch("prod", "replica-a/1")
		b.Containers = append(b.Containers, container("c-late", "late", "a-late"))
		b.Offsets = []ingest.Offset{{Partition: 0, Next: 40}, {Partition: 1, Next: 5}}
		b.Gaps = []ingest.Gap{{Partition: 1, From: 0, To: 1, Count: 2}}
		b.DeadLetters = []ingest.DeadLetter{{Partition: 1, Offset: 3, Topic: "events.dlq"}}
		_, err = db.SaveBatch(t.Context(), b)
		wantCode(t, err, soarkafka.ECONFLICT)

		// Taken over.
		if ok, _ := acquire(t, db, "prod", "replica-b/1", ttl); !ok {
			t.Fatal("the expired lease was not taken")
		}
		_, err = db.SaveBatch(t.Context(), b)
		wantCode(t, err, soarkafka.ECONFLICT)
		if msg := err.Error(); !strings.Contains(msg, `asset "prod"`) || !strings.Contains(msg, "nothing of this batch was stored") {
			t.Errorf("fenced batch error %q", msg)
		}
		if got := countState(t, raw, "prod"); got != stored {
			t.Fatalf("after fenced batches: %+v, want %+v unchanged", got, stored)
		}
		wantOffsets(t, db, "prod", map[int32]int64{0: 20})
		st, err := db.Status(t.Context(), "prod", "events")
		if err != nil {
			t.Fatal(err)
		}
		if st.GapCount != 1 || st.DeadLettered != 1 {
			t.Fatalf("status after fenced batches: %+v", st)
		}

		// The new holder writes; a batch without a holder is not fenced.
		// Its container c-replica-a/1 is stored already: c-late is new.
		b.LeaseHolder = "replica-b/1"
		saveBatch(t, db, b)
		if got, want := countState(t, raw, "prod"), (stateRows{2, 2, 2, 2, 2}); got != want {
			t.Fatalf("after the new holder's batch: %+v, want %+v", got, want)
		}
		saveBatch(t, db, stateBatch("prod", ""))
	})
}

// refuse plants a trigger making the database refuse inserts into table
// whose column is value, standing for any failure mid-batch.
func refuse(t *testing.T, db *store.DB, raw *sql.DB, table, column, value string) {
	t.Helper()
	ddl := []string{fmt.Sprintf(`CREATE TRIGGER refuse_%[1]s BEFORE INSERT ON %[1]s
		WHEN NEW.%[2]s = '%[3]s'
		BEGIN SELECT RAISE(ABORT, 'refused %[3]s'); END`, table, column, value)}
	if db.Dialect() == "postgres" {
		ddl = []string{fmt.Sprintf(`CREATE FUNCTION refuse_%[1]s() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'refused %[3]s'; END $$`, table, column, value),
			fmt.Sprintf(`CREATE TRIGGER refuse_%[1]s BEFORE INSERT ON %[1]s FOR EACH ROW
			WHEN (NEW.%[2]s = '%[3]s') EXECUTE FUNCTION refuse_%[1]s()`, table, column, value)}
	}
	for _, q := range ddl {
		if _, err := raw.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// test_sleep(ms) lets a SQLite trigger hold a transaction open, as
// pg_sleep does on PostgreSQL. Registered before any connection opens, so
// every connection of the test binary has it.
func init() {
	sqlite.MustRegisterScalarFunction("test_sleep", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		ms, _ := args[0].(int64)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return nil, nil
	})
}

// slowInserts plants a trigger making inserts into table whose column is
// value take d: a batch that holds its transaction open.
func slowInserts(t *testing.T, db *store.DB, raw *sql.DB, table, column, value string, d time.Duration) {
	t.Helper()
	ms := d.Milliseconds()
	ddl := []string{fmt.Sprintf(`CREATE TRIGGER slow_%[1]s AFTER INSERT ON %[1]s
		WHEN NEW.%[2]s = '%[3]s'
		BEGIN SELECT test_sleep(%[4]d); END`, table, column, value, ms)}
	if db.Dialect() == "postgres" {
		ddl = []string{fmt.Sprintf(`CREATE FUNCTION slow_%[1]s() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN PERFORM pg_sleep(%[2]d / 1000.0); RETURN NEW; END $$`, table, ms),
			fmt.Sprintf(`CREATE TRIGGER slow_%[1]s AFTER INSERT ON %[1]s FOR EACH ROW
			WHEN (NEW.%[2]s = '%[3]s') EXECUTE FUNCTION slow_%[1]s()`, table, column, value)}
	}
	for _, q := range ddl {
		if _, err := raw.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// A poll taking over a lease that expires while the holder's batch is
// being stored waits for that batch, then reads the position it stored:
// the fence holds from the check to the commit, so the two polls cannot
// both read from the same position.
func TestSaveBatchFenceHoldsOffTakeover(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		c := newClock(db)
		ttl := time.Minute
		if db.Dialect() == "postgres" {
			ttl = 300 * time.Millisecond // the database's clock: it must really pass
		}
		const hold = 1500 * time.Millisecond
		slowInserts(t, db, raw, "ingest_dead_letters", "parser", "slow", hold)

		if ok, _ := acquire(t, db, "prod", "replica-a/1", ttl); !ok {
			t.Fatal("acquire")
		}
		saved := make(chan error, 1)
		go func() {
			_, err := db.SaveBatch(t.Context(), &ingest.Batch{Asset: "prod", Topic: "events", LeaseHolder: "replica-a/1",
				Containers:  []ingest.Container{container("c1", "one", "0:1")},
				Offsets:     []ingest.Offset{{Partition: 0, Next: 50}},
				DeadLetters: []ingest.DeadLetter{{Partition: 0, Offset: 7, Topic: "dlq", Parser: "slow"}}})
			saved <- err
		}()
		// The batch passed the fence and is inside its slow insert; the
		// lease expires meanwhile.
		time.Sleep(hold / 3)
		if db.Dialect() == "sqlite" {
			c.Add(ttl)
		} else {
			time.Sleep(ttl)
		}
		ok, l := acquire(t, db, "prod", "replica-b/1", time.Minute)
		offsets, err := db.Offsets(t.Context(), "prod", "events")
		if err != nil {
			t.Fatal(err)
		}
		if err := <-saved; err != nil {
			t.Fatalf("the holder's batch: %v", err)
		}
		if !ok || l.Holder != "replica-b/1" {
			t.Fatalf("takeover = %v %+v", ok, l)
		}
		if offsets[0] != 50 {
			t.Fatalf("the new holder read position %v before the old holder's batch committed, want 50", offsets)
		}
	})
}

// Gaps and dead letters are stored with their batch, once however often it
// is saved, and rolled back with it.
func TestSaveBatchGapsAndDeadLetters(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		c := newClock(db)
		b := &ingest.Batch{Asset: "prod", Topic: "events",
			Containers: []ingest.Container{container("c1", "one", "0:10")},
			Offsets:    []ingest.Offset{{Partition: 0, Next: 13}, {Partition: 1, Next: 4}},
			Gaps: []ingest.Gap{
				{Partition: 0, From: 0, To: 9, Count: 10},
				{Partition: 1, From: 0, To: 0, Count: 1},
			},
			DeadLetters: []ingest.DeadLetter{
				{Partition: 0, Offset: 11, Topic: "events.dlq", Parser: "p", Error: "unexpected token"},
				{Partition: 0, Offset: 12, Topic: "events.dlq", Parser: "p", Error: "no name"},
				{Partition: 1, Offset: 3, Topic: "events.dlq", Parser: "p", Error: "no name"},
			},
		}
		saveBatch(t, db, b)
		st, err := db.Status(t.Context(), "prod", "events")
		if err != nil {
			t.Fatal(err)
		}
		at := c.Now()
		wantGaps := []ingest.GapRecord{
			{Gap: ingest.Gap{Partition: 1, From: 0, To: 0, Count: 1}, Topic: "events", DetectedAt: at},
			{Gap: ingest.Gap{Partition: 0, From: 0, To: 9, Count: 10}, Topic: "events", DetectedAt: at},
		}
		if !sameGaps(st.Gaps, wantGaps) || st.GapCount != 2 || st.GapMessages != 11 || st.DeadLettered != 3 {
			t.Fatalf("status %+v, want gaps %+v, 2 gaps of 11 messages, 3 dead-lettered", st, wantGaps)
		}
		var dlTopic, parser, msg, created string
		if err := raw.QueryRowContext(t.Context(), `SELECT dead_letter_topic, parser, error, CAST(created_at AS TEXT)
			FROM ingest_dead_letters WHERE asset = 'prod' AND topic = 'events' AND partition = 0 AND message_offset = 11`).
			Scan(&dlTopic, &parser, &msg, &created); err != nil {
			t.Fatal(err)
		}
		if dlTopic != "events.dlq" || parser != "p" || msg != "unexpected token" || !strings.HasPrefix(created, "2026-03-01") {
			t.Fatalf("dead letter row: %q %q %q %q", dlTopic, parser, msg, created)
		}

		// Replayed (poll now reads from the beginning): nothing counted
		// twice.
		c.Add(time.Hour)
		saveBatch(t, db, b)
		st2, err := db.Status(t.Context(), "prod", "events")
		if err != nil {
			t.Fatal(err)
		}
		if !sameGaps(st2.Gaps, wantGaps) || st2.GapCount != 2 || st2.GapMessages != 11 || st2.DeadLettered != 3 {
			t.Fatalf("status after replay %+v, want it unchanged", st2)
		}

		// A batch the database refuses halfway (at its last dead letter,
		// after its containers, offsets and gaps) stores none of them.
		refuse(t, db, raw, "ingest_dead_letters", "parser", "poison")
		before := countState(t, raw, "prod")
		_, err = db.SaveBatch(t.Context(), &ingest.Batch{Asset: "prod", Topic: "events",
			Containers: []ingest.Container{container("c2", "two", "0:20")},
			Offsets:    []ingest.Offset{{Partition: 0, Next: 30}},
			Gaps:       []ingest.Gap{{Partition: 0, From: 13, To: 19, Count: 7}},
			DeadLetters: []ingest.DeadLetter{
				{Partition: 0, Offset: 21, Topic: "events.dlq", Parser: "p"},
				{Partition: 0, Offset: 22, Topic: "events.dlq", Parser: "poison"},
			},
		})
		if err == nil || !strings.Contains(err.Error(), "refused poison") || soarkafka.ErrorCode(err) != soarkafka.EINTERNAL {
			t.Fatalf("SaveBatch error = %v, want the database's refusal as an internal error", err)
		}
		if got := countState(t, raw, "prod"); got != before {
			t.Fatalf("after a failed batch: %+v, want %+v", got, before)
		}
		wantOffsets(t, db, "prod", map[int32]int64{0: 13, 1: 4})
	})
}

func sameGaps(got, want []ingest.GapRecord) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Gap != w.Gap || g.Topic != w.Topic || !g.DetectedAt.Equal(w.DetectedAt) {
			return false
		}
	}
	return true
}

// Bad gaps and dead letters are refused with the rest of the batch, each
// named.
func TestSaveBatchInvalidGapsAndDeadLetters(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		_, err := db.SaveBatch(t.Context(), &ingest.Batch{Asset: "prod", Topic: "events",
			Containers: []ingest.Container{container("c1", "fine", "0:1")},
			Gaps: []ingest.Gap{
				{Partition: 0, From: 0, To: 4, Count: 5}, // fine
				{Partition: -1, From: 0, To: 0, Count: 1},
				{Partition: 0, From: 9, To: 3, Count: 1},
				{Partition: 0, From: 0, To: 4, Count: 4},
				{Partition: 0, From: -2, To: -1, Count: 2},
			},
			DeadLetters: []ingest.DeadLetter{
				{Partition: 0, Offset: 1, Topic: "dlq"}, // fine
				{Partition: 0, Offset: -1, Topic: "dlq"},
				{Partition: -1, Offset: 1},
			},
		})
		wantCode(t, err, soarkafka.EINVALID)
		msg := err.Error()
		for _, field := range []string{"gaps[1]: partition -1", "gaps[2].from: 9 is after to 3", "gaps[3].count: 4: want to - from + 1 = 5",
			"gaps[4]: partition 0, from -2", "dead_letters[1]: partition 0, offset -1", "dead_letters[2]: partition -1",
			"dead_letters[2].topic: is empty"} {
			if !strings.Contains(msg, field) {
				t.Errorf("error %q does not name %s", msg, field)
			}
		}
		for _, fine := range []string{"gaps[0]", "dead_letters[0]"} {
			if strings.Contains(msg, fine) {
				t.Errorf("error %q names the well formed %s", msg, fine)
			}
		}
		if got := countState(t, raw, "prod"); got != (stateRows{}) {
			t.Fatalf("an invalid batch stored %+v", got)
		}
	})
}

func TestRecordPollAndStatus(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ctx := t.Context()

		st, err := db.Status(ctx, "prod", "events")
		if err != nil {
			t.Fatal(err)
		}
		if st.Offsets == nil || len(st.Offsets) != 0 || st.LastPoll != nil || !st.LastSuccess.IsZero() ||
			len(st.Gaps) != 0 || st.GapCount != 0 || st.GapMessages != 0 || st.DeadLettered != 0 {
			t.Fatalf("status of an asset never polled = %+v, want empty", st)
		}

		// Not UTC, finer than a microsecond: stored UTC to the microsecond.
		started := time.Date(2026, 3, 1, 13, 0, 0, 123456789, time.FixedZone("CET", 3600))
		ok := ingest.PollRecord{Asset: "prod", Topic: "events", Kind: ingest.PollScheduled, StartedAt: started,
			Duration: 1500*time.Millisecond + 789, Status: ingest.PollSucceeded,
			MessagesRead: 100, ContainersCreated: 7, ArtifactsCreated: 90, DuplicatesSkipped: 3, DeadLettered: 2, Gaps: 1}
		if err := db.RecordPoll(ctx, ok); err != nil {
			t.Fatal(err)
		}
		saveBatch(t, db, &ingest.Batch{Asset: "prod", Topic: "events", Offsets: []ingest.Offset{{Partition: 0, Next: 100}}})
		st, err = db.Status(ctx, "prod", "events")
		if err != nil {
			t.Fatal(err)
		}
		wantOK := ok
		wantOK.StartedAt = started.UTC().Truncate(time.Microsecond)
		lastSuccess := started.Add(ok.Duration).UTC().Truncate(time.Microsecond)
		wantPoll(t, st.LastPoll, wantOK)
		if !st.LastSuccess.Equal(lastSuccess) || st.LastSuccess.Location() != time.UTC {
			t.Fatalf("last success %s, want %s in UTC", st.LastSuccess, lastSuccess)
		}
		if !reflect.DeepEqual(st.Offsets, map[int32]int64{0: 100}) {
			t.Fatalf("status offsets %v", st.Offsets)
		}

		// A failed poll replaces the last poll, not the last success.
		failed := ingest.PollRecord{Asset: "prod", Topic: "events", Kind: ingest.PollNow,
			StartedAt: started.Add(time.Hour).UTC().Truncate(time.Microsecond), Duration: time.Second, Status: ingest.PollFailed,
			Error: "kafka: broker 127.0.0.1:9092 unreachable", MessagesRead: 5}
		if err := db.RecordPoll(ctx, failed); err != nil {
			t.Fatal(err)
		}
		st, err = db.Status(ctx, "prod", "events")
		if err != nil {
			t.Fatal(err)
		}
		wantPoll(t, st.LastPoll, failed)
		if !st.LastSuccess.Equal(lastSuccess) {
			t.Fatalf("last success after a failure %s, want %s kept", st.LastSuccess, lastSuccess)
		}

		// A later success moves it.
		again := ok
		again.Kind, again.StartedAt = ingest.PollAction, started.Add(2*time.Hour).UTC().Truncate(time.Microsecond)
		if err := db.RecordPoll(ctx, again); err != nil {
			t.Fatal(err)
		}
		st, err = db.Status(ctx, "prod", "events")
		if err != nil {
			t.Fatal(err)
		}
		wantPoll(t, st.LastPoll, again)
		if want := again.StartedAt.Add(again.Duration).Truncate(time.Microsecond); !st.LastSuccess.Equal(want) {
			t.Fatalf("last success %s, want %s", st.LastSuccess, want)
		}

		// Another asset has a status of its own; another topic of the
		// asset has no offsets but the asset's last poll.
		if st, err := db.Status(ctx, "other", "events"); err != nil || st.LastPoll != nil || len(st.Offsets) != 0 {
			t.Fatalf("status of another asset = %+v, %v", st, err)
		}
		if st, err := db.Status(ctx, "prod", "renamed"); err != nil || st.LastPoll == nil || len(st.Offsets) != 0 {
			t.Fatalf("status of another topic = %+v, %v", st, err)
		}

		err = db.RecordPoll(ctx, ingest.PollRecord{Status: "maybe"})
		wantCode(t, err, soarkafka.EINVALID)
		if !strings.Contains(err.Error(), "asset: is empty") || !strings.Contains(err.Error(), `status: "maybe"`) {
			t.Errorf("error %q does not name asset and status", err)
		}
	})
}

func wantPoll(t *testing.T, got *ingest.PollRecord, want ingest.PollRecord) {
	t.Helper()
	if got == nil {
		t.Fatalf("last poll nil, want %+v", want)
	}
	g := *got
	if !g.StartedAt.Equal(want.StartedAt) || g.StartedAt.Location() != time.UTC {
		t.Fatalf("last poll started %s, want %s in UTC", g.StartedAt, want.StartedAt)
	}
	g.StartedAt, want.StartedAt = time.Time{}, time.Time{}
	if g != want {
		t.Fatalf("last poll %+v, want %+v", g, want)
	}
}

// Status lists the newest StatusGapLimit gaps, newest first, and counts all
// of the asset's gaps and dead letters, whatever their topic.
func TestStatusGapLimitAndTotals(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		c := newClock(db)
		const n = ingest.StatusGapLimit + 5
		var messages int64
		for i := range n {
			topic := "events"
			if i%2 == 1 {
				topic = "older-topic"
			}
			count := int64(i%3 + 1)
			messages += count
			from := int64(i * 10)
			saveBatch(t, db, &ingest.Batch{Asset: "prod", Topic: topic,
				Gaps:        []ingest.Gap{{Partition: int32(i % 2), From: from, To: from + count - 1, Count: count}},
				DeadLetters: []ingest.DeadLetter{{Partition: 0, Offset: int64(i), Topic: "dlq"}}})
			c.Add(time.Second)
		}
		// Another asset's are not counted.
		saveBatch(t, db, &ingest.Batch{Asset: "other", Topic: "events",
			Gaps:        []ingest.Gap{{Partition: 0, From: 0, To: 99, Count: 100}},
			DeadLetters: []ingest.DeadLetter{{Partition: 0, Offset: 0, Topic: "dlq"}}})

		st, err := db.Status(t.Context(), "prod", "events")
		if err != nil {
			t.Fatal(err)
		}
		if st.GapCount != n || st.GapMessages != messages || st.DeadLettered != n {
			t.Fatalf("totals %d gaps of %d messages, %d dead-lettered; want %d, %d, %d",
				st.GapCount, st.GapMessages, st.DeadLettered, n, messages, n)
		}
		if len(st.Gaps) != ingest.StatusGapLimit {
			t.Fatalf("%d gaps listed, want %d", len(st.Gaps), ingest.StatusGapLimit)
		}
		start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		for k, g := range st.Gaps {
			i := n - 1 - k // newest first
			topic := "events"
			if i%2 == 1 {
				topic = "older-topic"
			}
			count := int64(i%3 + 1)
			want := ingest.GapRecord{Gap: ingest.Gap{Partition: int32(i % 2), From: int64(i * 10), To: int64(i*10) + count - 1, Count: count},
				Topic: topic, DetectedAt: start.Add(time.Duration(i) * time.Second)}
			if !sameGaps([]ingest.GapRecord{g}, []ingest.GapRecord{want}) {
				t.Fatalf("gap %d = %+v, want %+v", k, g, want)
			}
		}
	})
}
