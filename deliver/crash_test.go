package deliver_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/deliver"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
)

// Environment of the crashing worker process (crashMain).
const (
	crashPointEnv = "SOARKAFKA_DELIVER_CRASH_AT"
	crashDBEnv    = "SOARKAFKA_DELIVER_CRASH_DB"
	crashURLEnv   = "SOARKAFKA_DELIVER_CRASH_SOAR"
	crashTokenEnv = "SOARKAFKA_DELIVER_CRASH_TOKEN"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashPointEnv) != "" {
		os.Exit(crashMain())
	}
	os.Exit(m.Run())
}

// crashMain runs a worker that SIGKILLs its own process at the fault
// point: nothing of Go's shutdown runs, as in a real crash.
func crashMain() int {
	point := os.Getenv(crashPointEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := store.Open(ctx, os.Getenv(crashDBEnv), nil)
	if err != nil {
		return 2
	}
	cfg, err := assets.Decode(map[string]any{"hosts": "127.0.0.1:9092", "topic": "alerts", "delivery": map[string]any{
		"mode": "push", "url": os.Getenv(crashURLEnv), "token": os.Getenv(crashTokenEnv), "asset_id": 7, "artifacts_per_request": 2}},
		assets.DecodeOptions{})
	if err != nil {
		return 2
	}
	w, err := deliver.New(assetName, cfg, db, deliver.WithLeaseTTL(time.Second), deliver.WithIdlePoll(20*time.Millisecond),
		deliver.WithFaultHook(func(p string) {
			if p == point {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}))
	if err != nil {
		return 2
	}
	w.Run(ctx)
	return 3 // the point was never reached
}

// SIGKILL at each delivery point (before the request, after the SOAR
// answered but before the outbox is marked, between two requests of a
// container's artifacts), then a new worker: every container and
// artifact is in the SOAR exactly once, with its artifact de-duplication
// off.
func TestDeliverSurvivesSIGKILL(t *testing.T) {
	for _, point := range []string{deliver.FaultBeforeRequest, deliver.FaultAfterAnswer, deliver.FaultMidArtifacts} {
		t.Run(point, func(t *testing.T) {
			url := testenv.SQLiteURL(t)
			db := openStore(t, url)
			soar := testenv.NewSOAR(t)
			save(t, db, spec{"c1", "", []string{"1", "2", "3", "4", "5"}})
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashPointEnv+"="+point, crashDBEnv+"="+url, crashURLEnv+"="+soar.URL, crashTokenEnv+"="+soar.Token)
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the worker process was not killed at %s: %v (exit %s)", point, err, strconv.Itoa(cmd.ProcessState.ExitCode()))
			}
			rows, err := db.NextDeliveries(t.Context(), assetName, 10)
			if err != nil || len(rows) != 1 || rows[0].State != ingest.OutboxSending {
				t.Fatalf("after the crash: %+v, %v; want the row left sending", rows, err)
			}
			// The dead process's lease expires; a new worker takes over.
			start(t, db, pushConfig(t, soar, "artifacts_per_request", 2), fast()...)
			waitStats(t, db, "delivery after the crash", allDelivered(1))
			wantOnce(t, soar, map[string][]string{"container c1": {"1", "2", "3", "4", "5"}})
		})
	}
}
