package web_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
	"github.com/soarkafka/soarkafka/web"
)

// containerLabels polls through the on poll action and returns the label
// of every container stored for asset (its key in the store).
func containerLabels(t *testing.T, e *env, storedAs string) map[string]int {
	t.Helper()
	code, out := e.do("GET", "/v1/containers?page_size=0&asset="+storedAs, nil)
	if code != 200 {
		t.Fatalf("list containers of %s: %d %v", storedAs, code, out)
	}
	labels := map[string]int{}
	for _, c := range out["data"].([]any) {
		labels[fmt.Sprint(c.(map[string]any)["label"])]++
	}
	return labels
}

// newIngestEnv is newEnv with the read API of stored containers, as the
// server wires it.
func newIngestEnv(t *testing.T, url string) *env {
	t.Helper()
	return newEnvWith(t, url, func(o *web.Options) { o.Ingest = o.Store.(*store.DB) })
}

func TestContainerLabelOfStoredAsset(t *testing.T) {
	e := newIngestEnv(t, testenv.SQLiteURL(t))
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	produceAlerts(t, c, 0, 0, 6)
	hosts := strings.Join(c.ListenAddrs(), ",")
	for name, ingestBlock := range map[string]map[string]any{
		"labelled": {"container_label": "kafka_alerts", "batch_size": 2},
		"default":  {"batch_size": 3},
	} {
		cfg := map[string]any{"hosts": hosts, "topic": "alerts", "read_from_beginning": true, "timeout": 3000, "ingest": ingestBlock}
		if code, out := e.do("POST", "/v1/assets", asset(name, cfg)); code != 201 {
			t.Fatalf("create asset %s: %d %v", name, code, out)
		}
		if code, out := e.do("POST", "/v1/actions/on_poll", map[string]any{"asset": name}); code != 200 || out["status"] != "success" {
			t.Fatalf("on poll %s: %d %v", name, code, out)
		}
	}
	// The bundled default parser sets no label: the asset's is stored.
	if got := containerLabels(t, e, "labelled"); len(got) != 1 || got["kafka_alerts"] != 3 {
		t.Fatalf("labels of asset labelled = %v, want 3 containers kafka_alerts", got)
	}
	if got := containerLabels(t, e, "default"); len(got) != 1 || got["events"] != 2 {
		t.Fatalf("labels of asset default = %v, want 2 containers events (the default)", got)
	}
	code, out := e.do("GET", "/v1/assets/default", nil)
	if code != 200 || out["config"].(map[string]any)["ingest"].(map[string]any)["container_label"] != "events" {
		t.Fatalf("asset default: %d %v, want ingest.container_label events", code, out)
	}
}

func TestContainerLabelOfAppRunDocument(t *testing.T) {
	e := newIngestEnv(t, testenv.SQLiteURL(t))
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	produceAlerts(t, c, 0, 0, 3)
	// SOAR puts its own keys in the ingest block beside container_label.
	cfg := map[string]any{"hosts": strings.Join(c.ListenAddrs(), ","), "topic": "alerts", "read_from_beginning": true, "timeout": 3000,
		"appname": "kafka", "directory": "kafka_x",
		"ingest": map[string]any{"container_label": "soar_label", "interval_mins": 5, "poll": true, "start_time_epoch_utc": nil}}
	doc := map[string]any{"action": "on poll", "identifier": "on_poll", "asset_id": 21, "config": cfg,
		"parameters": []any{map[string]any{}}}
	code, out := e.do("POST", "/v1/actions/on_poll", doc)
	if code != 200 || out["status"] != "success" {
		t.Fatalf("app-run poll: %d %v", code, out)
	}
	if got := containerLabels(t, e, "soar:21"); len(got) != 1 || got["soar_label"] != 1 {
		t.Fatalf("labels under soar:21 = %v, want the document's soar_label", got)
	}
}

func TestContainerLabelRefused(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	for _, bad := range []any{"Bad Label", "", strings.Repeat("a", 129), "événements", 7} {
		cfg := map[string]any{"hosts": "127.0.0.1:9", "topic": "alerts", "ingest": map[string]any{"container_label": bad}}
		code, out := e.do("POST", "/v1/assets", asset("x", cfg))
		fields := fmt.Sprint(errField(out, "fields"))
		if code != 400 || !strings.Contains(fields, "ingest.container_label") {
			t.Fatalf("container_label %q: %d %v, want 400 naming ingest.container_label", bad, code, out)
		}
		// The app-run document's config is checked the same way.
		doc := map[string]any{"identifier": "on_poll", "asset_id": 3, "config": cfg, "parameters": []any{map[string]any{}}}
		code, out = e.do("POST", "/v1/actions/on_poll", doc)
		if fields := fmt.Sprint(errField(out, "fields")); code != 400 || !strings.Contains(fields, "ingest.container_label") {
			t.Fatalf("app-run container_label %q: %d %v, want 400 naming ingest.container_label", bad, code, out)
		}
	}
}
