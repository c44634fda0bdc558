package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/deliver"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/web"
)

// GET /v1/assets/{name}/delivery reports a push asset's outbox and its
// worker; POST .../delivery/retry sends the dead letters again.
func TestDeliveryRoutes(t *testing.T) {
	soar := testenv.NewSOAR(t, testenv.SOARLabels("refused"))
	soar.RejectLabel("refused")
	var svc *deliver.Service
	e := newEnvWith(t, testenv.SQLiteURL(t), func(o *web.Options) {
		svc = deliver.NewService(o.Store.(deliver.Store), o.Assets, o.Logger,
			deliver.WithBackoff(10*time.Millisecond, 50*time.Millisecond), deliver.WithIdlePoll(20*time.Millisecond))
		// As the server wires it: a changed asset starts or stops its worker.
		o.Assets.Subscribe(func(context.Context, assets.Change) { svc.Changed() })
		o.Delivery = svc
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	if code, out := e.do("GET", "/v1/assets/nope/delivery", nil); code != http.StatusNotFound {
		t.Fatalf("unknown asset: %d %v", code, out)
	}
	if code, out := e.do("POST", "/v1/assets", map[string]any{"name": "push", "config": map[string]any{
		"hosts": "127.0.0.1:9092", "topic": "alerts",
		"delivery": map[string]any{"mode": "push", "url": soar.URL, "token": soar.Token, "asset_id": 3}}}); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	body := func(label string) json.RawMessage {
		return json.RawMessage(`{"name": "c", "label": "` + label + `"}`)
	}
	if _, err := e.db.SaveBatch(t.Context(), &ingest.Batch{Asset: "push", Topic: "alerts", Outbox: true, Containers: []ingest.Container{
		{SourceDataIdentifier: "ok", Body: body("events"), Artifacts: []ingest.Artifact{{SourceDataIdentifier: "a1", Body: json.RawMessage(`{"name": "a"}`)}}},
		{SourceDataIdentifier: "bad", Body: body("refused")},
	}}); err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, out = e.do("GET", "/v1/assets/push/delivery", nil)
		if out["delivered"] == 1.0 && out["dead_lettered"] == 1.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery status %v", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out["mode"] != "push" || out["target"] != "splunk_soar" || out["worker"] != "running" || out["pending"] != 0.0 ||
		!strings.Contains(out["last_error"].(string), "Invalid label") {
		t.Fatalf("delivery status %v", out)
	}
	code, out := e.do("POST", "/v1/assets/push/delivery/retry", nil)
	if code != http.StatusOK || out["retried"] != 1.0 {
		t.Fatalf("retry: %d %v", code, out)
	}
	if code, out := e.do("POST", "/v1/assets/nope/delivery/retry", nil); code != http.StatusNotFound {
		t.Fatalf("retry of an unknown asset: %d %v", code, out)
	}
	if len(soar.Containers()) != 1 {
		t.Fatalf("SOAR holds %d containers, want 1", len(soar.Containers()))
	}
}

// Without a delivery service the routes answer 503, saying so.
func TestDeliveryRoutesUnavailable(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	for _, rt := range []struct{ method, path string }{{"GET", "/v1/assets/a/delivery"}, {"POST", "/v1/assets/a/delivery/retry"}} {
		if code, out := e.do(rt.method, rt.path, nil); code != http.StatusServiceUnavailable || !strings.Contains(errText(out), "no delivery") {
			t.Errorf("%s %s: %d %v", rt.method, rt.path, code, out)
		}
	}
}
