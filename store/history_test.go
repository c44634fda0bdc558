package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

func lagOf(n int64) *int64 { return &n }

// The last polls keep the newest ingest.PollHistoryLimit per asset,
// newest first, pruned as polls are recorded; another asset's are its
// own. A continuous poll's idle turns are left out of them, its turns that
// read or failed are kept.
func TestPollHistoryBound(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ctx := t.Context()
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		db.Now = func() time.Time { return base.Add(2 * time.Hour) }

		if h, err := db.History(ctx, "prod"); err != nil || len(h.Polls) != 0 || len(h.Minutes) != 0 {
			t.Fatalf("history of an asset never polled: %+v, %v", h, err)
		}
		other := ingest.PollRecord{Asset: "other", Topic: "events", Kind: ingest.PollScheduled, StartedAt: base,
			Duration: time.Second, Status: ingest.PollSucceeded, MessagesRead: 1}
		if err := db.RecordPoll(ctx, other); err != nil {
			t.Fatal(err)
		}
		total := ingest.PollHistoryLimit + 5
		for i := range total {
			r := ingest.PollRecord{Asset: "prod", Topic: "events", Kind: ingest.PollScheduled,
				StartedAt: base.Add(time.Duration(i) * time.Second), Duration: 1500 * time.Microsecond, Status: ingest.PollSucceeded,
				MessagesRead: int64(i), ContainersCreated: 2, ArtifactsCreated: 3, DuplicatesSkipped: 4, DeadLettered: 5, Gaps: 6}
			if i%10 == 3 {
				r.Status, r.Error = ingest.PollFailed, fmt.Sprintf("failure %d", i)
			}
			if err := db.RecordPoll(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		h, err := db.History(ctx, "prod")
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Polls) != ingest.PollHistoryLimit {
			t.Fatalf("%d polls kept, want %d", len(h.Polls), ingest.PollHistoryLimit)
		}
		for j, p := range h.Polls {
			i := total - 1 - j
			want := ingest.PollRecord{Asset: "prod", Kind: ingest.PollScheduled, Duration: 1500 * time.Microsecond,
				Status: ingest.PollSucceeded, MessagesRead: int64(i), ContainersCreated: 2, ArtifactsCreated: 3,
				DuplicatesSkipped: 4, DeadLettered: 5, Gaps: 6}
			if i%10 == 3 {
				want.Status, want.Error = ingest.PollFailed, fmt.Sprintf("failure %d", i)
			}
			if !p.StartedAt.Equal(base.Add(time.Duration(i)*time.Second)) || p.StartedAt.Location() != time.UTC {
				t.Fatalf("poll %d started %s, want %s", j, p.StartedAt, base.Add(time.Duration(i)*time.Second))
			}
			p.StartedAt = time.Time{}
			if p != want {
				t.Fatalf("poll %d: %+v, want %+v", j, p, want)
			}
		}
		if n := countRows(t, url, "ingest_poll_history", "prod"); n != ingest.PollHistoryLimit {
			t.Fatalf("%d rows stored for prod, want %d: the older ones are pruned", n, ingest.PollHistoryLimit)
		}
		if h, err := db.History(ctx, "other"); err != nil || len(h.Polls) != 1 || h.Polls[0].MessagesRead != 1 {
			t.Fatalf("another asset's history: %+v, %v", h, err)
		}

		// Continuous periods: the idle one updates the last poll and its
		// minute's lag, not the last polls.
		next := base.Add(time.Hour)
		turn := func(messages int64, status string, lag *int64) {
			t.Helper()
			next = next.Add(300 * time.Millisecond)
			r := ingest.PollRecord{Asset: "prod", Topic: "events", Kind: ingest.PollContinuous, StartedAt: next,
				Duration: 100 * time.Millisecond, Status: status, MessagesRead: messages, Lag: lag}
			if status == ingest.PollFailed {
				r.Error = "broker gone"
			}
			if err := db.RecordPoll(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		turn(0, ingest.PollSucceeded, lagOf(9))
		h, _ = db.History(ctx, "prod")
		if h.Polls[0].Kind != ingest.PollScheduled {
			t.Fatalf("an idle continuous turn joined the last polls: %+v", h.Polls[0])
		}
		if st, _ := db.Status(ctx, "prod", "events"); st.LastPoll.Kind != ingest.PollContinuous {
			t.Fatalf("an idle continuous turn is not the last poll: %+v", st.LastPoll)
		}
		turn(7, ingest.PollSucceeded, lagOf(2))
		turn(0, ingest.PollFailed, nil)
		h, _ = db.History(ctx, "prod")
		if len(h.Polls) != ingest.PollHistoryLimit || h.Polls[0].Status != ingest.PollFailed || h.Polls[0].Error != "broker gone" ||
			h.Polls[1].MessagesRead != 7 || h.Polls[1].Kind != ingest.PollContinuous {
			t.Fatalf("continuous turns that failed or read: %+v %+v", h.Polls[0], h.Polls[1])
		}
	})
}

// The minute series adds up the messages of the polls that ended in each
// minute and keeps the last lag known in it; minutes older than
// ingest.MinuteHistory before the newest poll are pruned, and History
// shows the last ingest.MinuteHistory by the store's clock, oldest first.
func TestPollHistoryMinutes(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ctx := t.Context()
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		now := base
		db.Now = func() time.Time { return now }
		record := func(at time.Time, d time.Duration, messages int64, lag *int64) {
			t.Helper()
			if err := db.RecordPoll(ctx, ingest.PollRecord{Asset: "prod", Topic: "events", Kind: ingest.PollScheduled,
				StartedAt: at, Duration: d, Status: ingest.PollSucceeded, MessagesRead: messages, Lag: lag}); err != nil {
				t.Fatal(err)
			}
		}
		// 12:00: three polls; the last lag known is 40 (the last poll could
		// not tell). 12:01: the poll that started at 12:00:59 ended then.
		record(base.Add(5*time.Second), time.Second, 10, lagOf(50))
		record(base.Add(20*time.Second), time.Second, 5, lagOf(40))
		record(base.Add(30*time.Second), time.Second, 1, nil)
		record(base.Add(59*time.Second), 2*time.Second, 4, lagOf(0))
		// 12:05: no lag known at all.
		record(base.Add(5*time.Minute), time.Second, 3, nil)
		now = base.Add(10 * time.Minute)
		h, err := db.History(ctx, "prod")
		if err != nil {
			t.Fatal(err)
		}
		got := minutes(h.Minutes)
		if want := "12:00 16 40 · 12:01 4 0 · 12:05 3 -"; got != want {
			t.Fatalf("minutes %q, want %q", got, want)
		}
		for _, m := range h.Minutes {
			if m.Minute.Location() != time.UTC {
				t.Fatalf("minute %s not in UTC", m.Minute)
			}
		}

		// 24 hours after 12:01 (the next day's 12:01) the minutes up to
		// 12:01 are pruned; 12:05 stays.
		record(base.Add(24*time.Hour+time.Minute), time.Second, 8, lagOf(1))
		if n := countRows(t, url, "ingest_minutes", "prod"); n != 2 {
			t.Fatalf("%d minute rows stored, want 2: those 24 hours older than the newest are pruned", n)
		}
		now = base.Add(24*time.Hour + 5*time.Minute)
		h, _ = db.History(ctx, "prod")
		if got, want := minutes(h.Minutes), "12:01 8 1"; got != want {
			t.Fatalf("the last 24 hours at 12:05 next day: %q, want %q (12:05 the day before is past)", got, want)
		}
	})
}

func minutes(ms []ingest.PollMinute) string {
	s := ""
	for i, m := range ms {
		if i > 0 {
			s += " · "
		}
		lag := "-"
		if m.Lag != nil {
			lag = fmt.Sprint(*m.Lag)
		}
		s += fmt.Sprintf("%s %d %s", m.Minute.Format("15:04"), m.Messages, lag)
	}
	return s
}

func countRows(t *testing.T, url, table, asset string) int {
	t.Helper()
	// One placeholder: SQLite reads $1 as PostgreSQL does.
	q := "SELECT count(*) FROM " + table + " WHERE asset = $1"
	var n int
	if err := testenv.RawDB(t, url).QueryRowContext(t.Context(), q, asset).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
