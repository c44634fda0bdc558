package poll_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/poll"
	"github.com/soarkafka/soarkafka/store"
)

// faultEnv makes the test binary a poll that kills itself with SIGKILL at
// a fault point: "<point>:<hit>", with faultStoreEnv and faultConfigEnv
// naming the database and the asset configuration.
const (
	faultEnv       = "SOARKAFKA_POLL_TEST_FAULT"
	faultStoreEnv  = "SOARKAFKA_POLL_TEST_FAULT_STORE"
	faultConfigEnv = "SOARKAFKA_POLL_TEST_FAULT_CONFIG"
)

// faultMain runs one scheduled poll of asset "prod" (a continuous poll
// when its configuration says so) and SIGKILLs the
// process at the hit-th time it reaches the fault point. It returns (exit
// status 3) only if the poll ended without reaching it.
func faultMain() int {
	point, hitStr, _ := strings.Cut(os.Getenv(faultEnv), ":")
	hit, _ := strconv.Atoi(hitStr)
	var n atomic.Int32
	hook := func(p string) {
		if p == point && int(n.Add(1)) == hit {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(os.Getenv(faultConfigEnv)), &doc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg, err := assets.Decode(doc, assets.DecodeOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	db, err := store.Open(ctx, os.Getenv(faultStoreEnv), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	db.SetFaultHook(hook)
	engine := parsers.NewEngine(sandbox.PoolConfig{})
	defer engine.Close()
	// A short lease, so that the restart does not wait long for the
	// crashed holder's to expire; long enough that the heartbeat keeps it
	// on a busy machine under -race, where 1s was lost once.
	p := poll.New(db, parsers.NewService(db, engine), nil, poll.WithFaultHook(hook), poll.WithLease(3*time.Second, time.Second))
	if cfg.Continuous() {
		// A continuous poll does not end by itself: a point never reached
		// ends it after a while.
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := p.Continuous(ctx, poll.Request{Asset: "prod", Config: cfg}); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		return 3
	}
	if _, err := p.Poll(ctx, poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollScheduled}); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return 3
}

// TestSIGKILLAtEveryFaultPointLosesAndDuplicatesNothing kills a polling
// process at each fault point, on its third batch (two are stored by then),
// restarts the poll in this process, and checks every message is stored
// exactly once and the position is at the end.
func TestSIGKILLAtEveryFaultPointLosesAndDuplicatesNothing(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	points := []string{poll.FaultBeforeParse, poll.FaultAfterParse, store.FaultMidTransaction, poll.FaultAfterCommit}
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		for _, point := range points {
			t.Run(point, func(t *testing.T) {
				// Each point gets its own world: a fresh cluster, and a
				// fresh SQLite file or PostgreSQL schema.
				if strings.HasPrefix(url, "sqlite") {
					url = testenv.SQLiteURL(t)
				} else {
					url = testenv.PostgresURL(t)
				}
				e := newEnv(t, url)
				e.produce(all, 0, 25)
				doc := map[string]any{"hosts": strings.Join(e.kafka.ListenAddrs(), ","), "topic": topic,
					"read_from_beginning": true, "timeout": 5000, "ingest": map[string]any{"batch_size": 10}}
				raw, _ := json.Marshal(doc)
				cmd := exec.CommandContext(t.Context(), exe, "-test.run=^$")
				// The third batch; before_parse runs ahead of the
				// store (parse workers), so its sixth hit is that far.
				hit := "3"
				if point == poll.FaultBeforeParse {
					hit = "6"
				}
				cmd.Env = append(os.Environ(), faultEnv+"="+point+":"+hit, faultStoreEnv+"="+url, faultConfigEnv+"="+string(raw))
				out, err := cmd.CombinedOutput()
				var exit *exec.ExitError
				if !errors.As(err, &exit) {
					t.Fatalf("child: %v (want killed)\n%s", err, out)
				}
				if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("child ended with %v, want SIGKILL at %s\n%s", err, point, out)
				}
				before := len(e.sdis("prod"))
				if before > 100 {
					t.Fatalf("%d artifacts before the restart", before)
				}
				// The restart waits for the crashed poll's lease (3s) to
				// expire, as another replica would.
				p := poll.New(e.db, e.parsers, nil, poll.WithLease(poll.DefaultLeaseTTL, 10*time.Second))
				cfg := e.config(map[string]any{"read_from_beginning": true, "ingest.batch_size": 10})
				if _, err := p.Poll(t.Context(), poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollAction}); err != nil {
					t.Fatal(err)
				}
				if got := e.sdis("prod"); !equal(got, wantSDIs(all, 0, 25)) {
					t.Fatalf("after the restart %d artifacts (%d before it), want each of the 100 messages once", len(got), before)
				}
				if got := e.offsets("prod"); !equalOffsets(got, map[int32]int64{0: 25, 1: 25, 2: 25, 3: 25}) {
					t.Fatalf("offsets %v", got)
				}
				t.Logf("killed at %s with %d of 100 stored; the restart stored the rest once", point, before)
			})
		}
	})
}
