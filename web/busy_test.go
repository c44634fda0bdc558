package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/store"
	"github.com/soarkafka/soarkafka/web"
)

// TestPlaygroundBusyIs503: with every parser worker taken, a playground call
// answers 503 with Retry-After and says why, rather than starting another.
func TestPlaygroundBusyIs503(t *testing.T) {
	e := newEnvWith(t, testenv.SQLiteURL(t), func(o *web.Options) {
		db, err := store.Open(context.Background(), testenv.SQLiteURL(t), o.Logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		exe, _ := os.Executable()
		engine := parsers.NewEngine(sandbox.PoolConfig{MaxWorkers: 1, BusyWait: 100 * time.Millisecond,
			Worker: sandbox.Config{Exe: exe, Env: []string{workerEnv + "=1"}, Timeout: 5 * time.Second}})
		t.Cleanup(engine.Close)
		o.Parsers = parsers.NewService(db, engine)
	})
	slow := strings.Replace(goodParser, "func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {",
		"func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {\n\tfor start := time.Now(); time.Since(start) < 2*time.Second; {\n\t}", 1)
	slow = strings.Replace(slow, "import (", "import (\n\t\"time\"", 1)
	// Two calls that each hold the only worker for 2 s: one runs, the
	// other waits parser.busy_wait and is refused.
	body, _ := json.Marshal(map[string]any{"source": slow, "messages": []any{map[string]any{"value": "hello"}}})
	type answer struct {
		code  int
		retry string
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/parsers/test", bytes.NewReader(body))
			req.Header.Set("ph-auth-token", token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answers <- answer{code: -1, retry: err.Error()}
				return
			}
			resp.Body.Close()
			answers <- answer{resp.StatusCode, resp.Header.Get("Retry-After")}
		}()
	}
	got := map[int]int{}
	for range 2 {
		a := <-answers
		got[a.code]++
		if a.code == http.StatusServiceUnavailable && a.retry == "" {
			t.Error("503 without Retry-After")
		}
	}
	if got[200] != 1 || got[503] != 1 {
		t.Fatalf("answers %v, want one 200 and one 503", got)
	}
}
