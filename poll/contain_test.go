package poll_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/poll"
)

// A panic in a scheduled poll, on a parse worker's goroutine or on the
// poll's own, fails that poll only: the process lives on, the asset's
// ingest status says the poll failed and why, the next turn polls again,
// and another asset is polled all along. Before, the panic ended the
// process.
func TestSchedulerSurvivesAPanickingPoll(t *testing.T) {
	for _, point := range []string{poll.FaultBeforeParse, poll.FaultAfterCommit} {
		t.Run(point, func(t *testing.T) {
			var hits atomic.Int32
			hook := func(p string) {
				if p == point && hits.Add(1) == 1 {
					panic("injected panic at " + p)
				}
			}
			e := newEnv(t, testenv.SQLiteURL(t), poll.WithFaultHook(hook))
			key, _ := assets.NewKey()
			sealer, _ := assets.NewSealer(key)
			svc := assets.NewService(e.db, sealer)
			e.produce(all, 0, 5)
			for _, name := range []string{"a", "b"} {
				if _, err := svc.Create(t.Context(), assets.Input{Name: name, Config: map[string]any{
					"hosts": strings.Join(e.kafka.ListenAddrs(), ","), "topic": topic, "read_from_beginning": true, "timeout": 2000,
					"ingest": map[string]any{"interval": "1s"}}}); err != nil {
					t.Fatal(err)
				}
			}
			s := poll.NewScheduler(e.poller, svc, nil, 50*time.Millisecond)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { defer close(done); s.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })

			var failed string
			waitFor(t, "a poll to fail on the panic", func() bool {
				for _, name := range []string{"a", "b"} {
					st, err := e.db.Status(t.Context(), name, topic)
					if err == nil && st.LastPoll != nil && st.LastPoll.Status == ingest.PollFailed {
						if !strings.Contains(st.LastPoll.Error, "panicked: injected panic at "+point) {
							t.Fatalf("asset %s: failed poll error %q, want the panic named", name, st.LastPoll.Error)
						}
						failed = name
						return true
					}
				}
				return false
			}, nil)
			// Both assets, the one whose poll panicked included, go on
			// to ingest everything.
			waitFor(t, "both assets to ingest every message", func() bool {
				return len(e.sdis("a")) == 20 && len(e.sdis("b")) == 20
			}, nil)
			waitFor(t, "a later poll of "+failed+" to succeed", func() bool {
				st, err := e.db.Status(t.Context(), failed, topic)
				return err == nil && st.LastPoll != nil && st.LastPoll.Status == ingest.PollSucceeded
			}, nil)
			if got := s.Scheduled(); !equal(got, []string{"a", "b"}) && !equal(got, []string{"b", "a"}) {
				t.Fatalf("scheduled %v after the panic, want a and b", got)
			}
		})
	}
}

// An asset stored with a configuration that no longer validates (here a
// Kerberos realm that would inject krb5.conf text, written beneath the
// service as a store of an older version could hold it) is reported in
// the log and in its ingest status once, and the scheduler polls the
// other assets.
func TestSchedulerReportsABrokenStoredAsset(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	key, _ := assets.NewKey()
	sealer, _ := assets.NewSealer(key)
	svc := assets.NewService(e.db, sealer)
	e.produce(all, 0, 5)
	if _, err := svc.Create(t.Context(), assets.Input{Name: "good", Config: map[string]any{
		"hosts": strings.Join(e.kafka.ListenAddrs(), ","), "topic": topic, "read_from_beginning": true, "timeout": 2000,
		"ingest": map[string]any{"interval": "1s"}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.CreateAsset(t.Context(), &assets.Asset{Name: "broken", Config: map[string]any{
		"hosts": strings.Join(e.kafka.ListenAddrs(), ","), "topic": topic, "use_kerberos": true,
		"ingest":   map[string]any{"interval": "1s"},
		"kerberos": map[string]any{"principal": "alice", "password": "pw", "realm": "R }", "kdc": "x"}}}); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	s := poll.NewScheduler(e.poller, svc, logs.Logger(), 50*time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, "the good asset to ingest", func() bool { return len(e.sdis("good")) == 20 }, nil)
	st, err := e.db.Status(t.Context(), "broken", topic)
	if err != nil || st.LastPoll == nil || st.LastPoll.Status != ingest.PollFailed ||
		!strings.Contains(st.LastPoll.Error, `asset "broken" cannot be used`) || !strings.Contains(st.LastPoll.Error, "kerberos.realm") {
		t.Fatalf("broken asset's status %+v, %v; want a failed poll naming kerberos.realm", st.LastPoll, err)
	}
	time.Sleep(300 * time.Millisecond) // several rescans
	if n := strings.Count(logs.String(), "asset cannot be used"); n != 1 {
		t.Fatalf("broken asset logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"asset":"broken"`) {
		t.Fatalf("log does not name the asset:\n%s", logs.String())
	}
}
