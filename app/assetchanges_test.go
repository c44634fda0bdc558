package app

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/assets"
)

// A change made through the assets service itself, not through the API's
// handlers, takes effect at once: the pooled producer of the old
// configuration goes, the scheduler reads the assets again (well before its
// rescan), and a deleted asset's metric series go with it. Any later write
// path (a console form, a file applied at start) gets the same.
func TestAssetServiceChangesTakeEffect(t *testing.T) {
	s, base, token := startWithToken(t)
	ctx := t.Context()
	doc := func(enabled bool) map[string]any {
		return map[string]any{"hosts": s.BrokerAddr(), "topic": "alerts", "ingest": map[string]any{"interval": "1h", "enabled": enabled}}
	}
	scheduled := func(step string, want bool) {
		t.Helper()
		// The scheduler's own rescan is 5 s away: only a wake is this quick.
		deadline := time.Now().Add(2 * time.Second)
		for slices.Contains(s.scheduler.Scheduled(), "ev") != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: scheduled %v, want ev scheduled %v within 2s", step, s.scheduler.Scheduled(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	metricsText := func() string {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		req.Header.Set("ph-auth-token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return string(raw)
	}

	if _, err := s.assets.Create(ctx, assets.Input{Name: "ev", Config: doc(true)}); err != nil {
		t.Fatal(err)
	}
	scheduled("created", true)
	post := `{"asset": "ev", "parameters": {"data_type": "JSON", "topic": "alerts", "timeout": 5, "data": "[{\"alert\": \"one\"}]"}}`
	if code, out := call(t, "POST", base+"/v1/actions/post_data", token, post); code != 200 || out["status"] != "success" {
		t.Fatalf("post data: %d %v", code, out)
	}
	if n := s.runner.Producers().Len(); n != 1 {
		t.Fatalf("pooled producers after post data: %d, want 1", n)
	}

	if _, err := s.assets.Update(ctx, "ev", assets.Input{Config: doc(false)}); err != nil {
		t.Fatal(err)
	}
	if n := s.runner.Producers().Len(); n != 0 {
		t.Fatalf("pooled producers after the update: %d, want 0 (the old configuration's producer kept)", n)
	}
	scheduled("disabled", false)
	if _, err := s.assets.Update(ctx, "ev", assets.Input{Config: doc(true)}); err != nil {
		t.Fatal(err)
	}
	scheduled("enabled again", true)

	if m := metricsText(); !strings.Contains(m, `soarkafka_produce_messages_total{asset="ev",result="ok"} 1`) {
		t.Fatalf("metrics lack the post data:\n%s", m)
	}
	if err := s.assets.Delete(ctx, "ev"); err != nil {
		t.Fatal(err)
	}
	if m := metricsText(); strings.Contains(m, `asset="ev"`) {
		t.Fatalf("the deleted asset's series are still served:\n%s", m)
	}
	scheduled("deleted", false)
}
