package deliver_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

// xsoarWebhook is what the tests check a Cortex XSOAR Generic Webhook
// for: basic auth, and one JSON incident {name, type, occurred, rawJson}
// per request, rawJson being JSON text.
type xsoarWebhook struct {
	mu        sync.Mutex
	incidents []map[string]any
	refuse    bool
}

func (x *xsoarWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if u, p, ok := r.BasicAuth(); !ok || u != "soarkafka" || p != "webhook-pw" || x.refuse {
		http.Error(w, `{"error": "unauthorized"}`, http.StatusUnauthorized)
		return
	}
	var inc map[string]any
	if err := json.NewDecoder(r.Body).Decode(&inc); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, _ := inc["rawJson"].(string)
	if inc["name"] == nil || inc["occurred"] == nil || !json.Valid([]byte(raw)) {
		http.Error(w, "incident without name, occurred or rawJson text", http.StatusBadRequest)
		return
	}
	if _, err := time.Parse(time.RFC3339Nano, inc["occurred"].(string)); err != nil {
		http.Error(w, "occurred: "+err.Error(), http.StatusBadRequest)
		return
	}
	x.incidents = append(x.incidents, inc)
	w.WriteHeader(http.StatusOK)
}

// The XSOAR webhook target: one incident per artifact, with its container
// in rawJson; a refused password pauses, as for SOAR.
func TestDeliverXSOARWebhook(t *testing.T) {
	db := openStore(t, testenv.SQLiteURL(t))
	hook := &xsoarWebhook{refuse: true}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	cfg, err := assets.Decode(map[string]any{"hosts": "127.0.0.1:9092", "topic": "alerts", "delivery": map[string]any{
		"mode": "push", "target": "xsoar_webhook", "url": srv.URL + "/instance/execute/kafka", "username": "soarkafka", "token": "webhook-pw"}},
		assets.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	save(t, db, spec{"c1", "", []string{"1", "2"}}, spec{"c2", "", nil})
	w, _ := start(t, db, cfg, fast()...)
	waitStats(t, db, "a refused attempt", func(s ingest.DeliveryStats) bool { return strings.Contains(s.LastError, "HTTP 401") })
	if st := w.Status(); !st.Paused || !strings.Contains(st.Message, "delivery.username and delivery.token") {
		t.Fatalf("status %+v", st)
	}
	hook.mu.Lock()
	hook.refuse = false
	hook.mu.Unlock()
	waitStats(t, db, "delivery", allDelivered(2))

	hook.mu.Lock()
	defer hook.mu.Unlock()
	names := map[string]int{}
	for _, inc := range hook.incidents {
		names[inc["name"].(string)]++
		var raw struct {
			Container struct {
				SourceDataIdentifier string `json:"source_data_identifier"`
			} `json:"container"`
		}
		if err := json.Unmarshal([]byte(inc["rawJson"].(string)), &raw); err != nil || !strings.HasPrefix(raw.Container.SourceDataIdentifier, "soarkafka:container:") {
			t.Errorf("rawJson %v: %v", inc["rawJson"], err)
		}
		if inc["type"] != "events" {
			t.Errorf("type %v, want the label", inc["type"])
		}
	}
	if len(hook.incidents) != 3 || names["artifact 1"] != 1 || names["artifact 2"] != 1 || names["container c2"] != 1 {
		t.Fatalf("incidents %v, want one per artifact and one for the container without artifacts", names)
	}
}
