package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

// From Kafka to the SOAR: a push asset's poll stores a batch, and the
// server's delivery worker writes its container and artifacts into the
// SOAR, counted in the metrics and the delivery status. When the asset
// goes back to pull, its worker stops.
func TestServerPushesToSOAR(t *testing.T) {
	s, base, token := startWithToken(t)
	soar := testenv.NewSOAR(t)
	ctx := t.Context()
	doc := func(mode string) map[string]any {
		return map[string]any{"hosts": s.BrokerAddr(), "topic": "alerts", "read_from_beginning": true,
			"delivery": map[string]any{"mode": mode, "url": soar.URL, "token": soar.Token, "asset_id": 9}}
	}
	if _, err := s.assets.Create(ctx, assets.Input{Name: "push", Config: doc("push")}); err != nil {
		t.Fatal(err)
	}
	post := `{"asset": "push", "parameters": {"data_type": "JSON", "topic": "alerts", "timeout": 5, "data": "[{\"alert\": \"one\"}, {\"alert\": \"two\"}]"}}`
	if code, out := call(t, "POST", base+"/v1/actions/post_data", token, post); code != 200 || out["status"] != "success" {
		t.Fatalf("post data: %d %v", code, out)
	}
	if code, out := call(t, "POST", base+"/v1/actions/on_poll", token, `{"asset": "push"}`); code != 200 || out["status"] != "success" {
		t.Fatalf("on poll: %d %v", code, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	var status map[string]any
	for {
		_, status = call(t, "GET", base+"/v1/assets/push/delivery", token, "")
		if status["delivered"] == 1.0 && status["pending"] == 0.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %v", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status["worker"] != "running" {
		t.Fatalf("delivery status %v", status)
	}
	cs := soar.Containers()
	if len(cs) != 1 || cs[0].AssetID != 9 || len(soar.Artifacts(cs[0].ID)) != 2 {
		t.Fatalf("SOAR containers %+v", cs)
	}
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("ph-auth-token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`soarkafka_delivery_delivered_total{asset="push"} 1`, `soarkafka_delivery_end_to_end_seconds_count{asset="push"} 1`,
		`soarkafka_delivery_request_seconds_count{asset="push"} 1`} {
		if !strings.Contains(string(raw), want) {
			t.Fatalf("metrics lack %s", want)
		}
	}

	if _, err := s.assets.Update(ctx, "push", assets.Input{Config: doc("pull")}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, status = call(t, "GET", base+"/v1/assets/push/delivery", token, "")
		if status["worker"] == "stopped" && status["mode"] == "pull" {
			break
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(status)
			t.Fatalf("the worker did not stop: %s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Its lease is released: another replica could take the asset at once.
	var holders int
	raw2 := testenv.RawDB(t, s.cfg.DatabaseURL)
	if err := raw2.QueryRow(`SELECT count(*) FROM ingest_leases WHERE asset = 'deliver:push'`).Scan(&holders); err != nil {
		t.Fatal(err)
	}
	if holders != 0 {
		t.Fatalf("%d delivery leases left after the worker stopped", holders)
	}
}

// Backpressure: while more of a push asset's containers wait for the SOAR
// than delivery.max_pending, its polls wait instead of filling the
// database (an interval poll held past its timeout says so); once the
// SOAR takes them again, the backlog drains and the polls go on, with
// every message delivered once.
func TestServerPushBackpressureHoldsPolls(t *testing.T) {
	s, base, token := startWithToken(t)
	soar := testenv.NewSOAR(t)
	soar.RefuseAuth(true) // the SOAR refuses every delivery: nothing leaves the outbox
	ctx := t.Context()
	doc := func(timeoutMS int) map[string]any {
		return map[string]any{"hosts": s.BrokerAddr(), "topic": "held", "read_from_beginning": true, "timeout": 1500,
			"ingest": map[string]any{"batch_size": 1},
			"delivery": map[string]any{"mode": "push", "url": soar.URL, "token": soar.Token, "asset_id": 9,
				"max_pending": 1, "timeout_ms": timeoutMS}}
	}
	if _, err := s.assets.Create(ctx, assets.Input{Name: "held", Config: doc(30000)}); err != nil {
		t.Fatal(err)
	}
	post := `{"asset": "held", "parameters": {"data_type": "JSON", "topic": "held", "timeout": 5, "data": "[{\"n\": 1}, {\"n\": 2}, {\"n\": 3}, {\"n\": 4}, {\"n\": 5}, {\"n\": 6}]"}}`
	if code, out := call(t, "POST", base+"/v1/actions/post_data", token, post); code != 200 || out["status"] != "success" {
		t.Fatalf("post data: %d %v", code, out)
	}
	code, out := call(t, "POST", base+"/v1/actions/on_poll", token, `{"asset": "held"}`)
	summary, _ := out["summary"].(map[string]any)
	if code != 200 || summary == nil || summary["stopped"] != "backpressure" {
		t.Fatalf("on poll with the SOAR refusing: %d %v; want it stopped by backpressure", code, out)
	}
	// One batch fills the limit; the poll may hold the few batches it
	// read before the answer turned (poll.Backpressure), never all six.
	if n := summary["messages_read"].(float64); n < 1 || n >= 6 {
		t.Fatalf("on poll read %v messages with max_pending 1 and nothing delivered; want at least 1 and fewer than 6", n)
	}
	if _, st := call(t, "GET", base+"/v1/assets/held/delivery", token, ""); st["delivered"] != 0.0 {
		t.Fatalf("delivered with the SOAR refusing: %v", st)
	}

	// The SOAR takes deliveries again; changing the asset restarts its
	// worker at once (no wait for the paused worker's slow retry).
	soar.RefuseAuth(false)
	if _, err := s.assets.Update(ctx, "held", assets.Input{Config: doc(20000)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		arts := 0
		for _, c := range soar.Containers() {
			arts += len(soar.Artifacts(c.ID))
		}
		if arts == 6 {
			t.Logf("delivered 6 in %s", time.Since(deadline.Add(-30*time.Second)))
			break
		}
		if arts > 6 || time.Now().After(deadline) {
			_, st := call(t, "GET", base+"/v1/assets/held/delivery", token, "")
			t.Fatalf("the SOAR holds %d artifacts, want the 6 messages once; delivery %v", arts, st)
		}
		if code, out := call(t, "POST", base+"/v1/actions/on_poll", token, `{"asset": "held"}`); code != 200 || out["status"] != "success" {
			t.Fatalf("on poll after the SOAR came back: %d %v", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, c := range soar.Containers() {
		for _, a := range soar.Artifacts(c.ID) {
			seen[a.SourceDataIdentifier]++
		}
	}
	if len(seen) != 6 {
		t.Fatalf("artifacts by source_data_identifier %v, want 6 distinct", seen)
	}
	for sdi, n := range seen {
		if n != 1 {
			t.Errorf("artifact %s delivered %d times", sdi, n)
		}
	}
}
