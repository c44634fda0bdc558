package web_test

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// GET /v1/assets/{name}/history lists the asset's polls newest first and
// its messages and lag per minute; it takes the API token, and an unknown
// asset is a 404.
func TestIngestHistory(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	c := testenv.NewKafka(t, kfake.SeedTopics(2, "alerts"))
	produceAlerts(t, c, 0, 0, 9)
	produceAlerts(t, c, 1, 0, 3)
	cfg := map[string]any{"hosts": strings.Join(c.ListenAddrs(), ","), "topic": "alerts", "read_from_beginning": true, "timeout": 3000}
	if code, out := e.do("POST", "/v1/assets", asset("prod", cfg)); code != 201 {
		t.Fatalf("create asset: %d %v", code, out)
	}
	code, h := e.do("GET", "/v1/assets/prod/history", nil)
	if code != 200 || h["asset"] != "prod" || len(h["polls"].([]any)) != 0 || len(h["minutes"].([]any)) != 0 {
		t.Fatalf("history before any poll: %d %v", code, h)
	}

	for _, params := range []map[string]any{{"poll_now": true, "artifact_count": 4}, {}} {
		if code, out := e.do("POST", "/v1/actions/on_poll", map[string]any{"asset": "prod", "parameters": params}); code != 200 || out["status"] != "success" {
			t.Fatalf("on poll %v: %d %v", params, code, out)
		}
	}
	code, h = e.do("GET", "/v1/assets/prod/history", nil)
	if code != 200 {
		t.Fatalf("history: %d %v", code, h)
	}
	polls := h["polls"].([]any)
	if len(polls) != 2 {
		t.Fatalf("polls %v, want the two", polls)
	}
	newest, oldest := polls[0].(map[string]any), polls[1].(map[string]any)
	if newest["kind"] != "action" || newest["status"] != "success" || newest["messages_read"] != 12.0 || newest["started_at"] == "" {
		t.Errorf("newest poll %v, want the on poll action's 12 messages", newest)
	}
	if oldest["kind"] != "poll_now" || oldest["messages_read"] != 4.0 || oldest["containers_created"].(float64) < 1 {
		t.Errorf("oldest poll %v, want poll now's 4 messages", oldest)
	}
	var messages float64
	var lag any
	for _, m := range h["minutes"].([]any) {
		m := m.(map[string]any)
		messages += m["messages"].(float64)
		if m["lag"] != nil {
			lag = m["lag"]
		}
	}
	if messages != 16 || lag != 0.0 {
		t.Errorf("minutes %v: %v messages and last lag %v, want 16 and 0", h["minutes"], messages, lag)
	}

	if code, out := e.do("GET", "/v1/assets/nope/history", nil); code != 404 || errField(out, "code") != "not_found" {
		t.Errorf("unknown asset: %d %v", code, out)
	}
	resp, err := e.srv.Client().Get(e.srv.URL + "/v1/assets/prod/history")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("without the token: %d, want 401", resp.StatusCode)
	}
}
