package web_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

func produceAlerts(t *testing.T, c *kfake.Cluster, partition int32, from, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Topic: "alerts", Partition: partition, Value: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	testenv.ProduceKafka(t, c, recs)
}

func TestOnPollActionAndIngestStatus(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	c := testenv.NewKafka(t, kfake.SeedTopics(2, "alerts"))
	produceAlerts(t, c, 0, 0, 30)
	produceAlerts(t, c, 1, 0, 12)
	cfg := map[string]any{"hosts": strings.Join(c.ListenAddrs(), ","), "topic": "alerts", "read_from_beginning": true, "timeout": 3000}
	if code, out := e.do("POST", "/v1/assets", asset("prod", cfg)); code != 201 {
		t.Fatalf("create asset: %d %v", code, out)
	}

	// Poll now first: 5 messages from the beginning, no position.
	code, out := e.do("POST", "/v1/actions/on_poll", map[string]any{"asset": "prod", "parameters": map[string]any{"poll_now": true, "artifact_count": 5}})
	if code != 200 || out["status"] != "success" {
		t.Fatalf("poll now: %d %v", code, out)
	}
	sum := out["summary"].(map[string]any)
	if sum["messages_read"] != 5.0 || sum["artifacts_created"] != 5.0 || sum["poll_now"] != true {
		t.Fatalf("poll now summary %v", sum)
	}
	code, st := e.do("GET", "/v1/assets/prod/ingest", nil)
	if code != 200 {
		t.Fatalf("status: %d %v", code, st)
	}
	for _, p := range st["partitions"].([]any) {
		if p.(map[string]any)["stored_offset"] != nil {
			t.Fatalf("poll now stored a position: %v", st)
		}
	}

	// The on poll action: everything once (the 5 of poll now are
	// duplicates).
	code, out = e.do("POST", "/v1/actions/on_poll", map[string]any{"asset": "prod"})
	if code != 200 || out["status"] != "success" {
		t.Fatalf("on poll: %d %v", code, out)
	}
	sum = out["summary"].(map[string]any)
	if sum["messages_read"] != 42.0 || sum["artifacts_created"] != 37.0 || sum["duplicates_skipped"] != 5.0 || sum["lag"] != 0.0 {
		t.Fatalf("on poll summary %v", sum)
	}
	if msg := out["message"].(string); !strings.HasPrefix(msg, "Ingested 42 messages into ") || !strings.HasSuffix(msg, "(lag 0)") {
		t.Fatalf("message %q", msg)
	}
	data := out["data"].([]any)
	if len(data) == 0 || data[0].(map[string]any)["id"] == nil || data[0].(map[string]any)["artifact_count"] == nil {
		t.Fatalf("data %v, want the containers with id and artifact_count", data)
	}
	parts := sum["partitions"].([]any)
	if len(parts) != 2 || parts[0].(map[string]any)["end_offset"] != 30.0 || parts[1].(map[string]any)["end_offset"] != 12.0 {
		t.Fatalf("partitions %v", parts)
	}

	produceAlerts(t, c, 1, 12, 3)
	code, st = e.do("GET", "/v1/assets/prod/ingest", nil)
	if code != 200 || st["lag"] != 3.0 || st["group_id"] != "soarkafka-prod" {
		t.Fatalf("status after produce: %d %v", code, st)
	}
	p1 := st["partitions"].([]any)[1].(map[string]any)
	if p1["stored_offset"] != 12.0 || p1["log_end_offset"] != 15.0 || p1["lag"] != 3.0 {
		t.Fatalf("partition 1 status %v", p1)
	}
	last := st["last_poll"].(map[string]any)
	if last["kind"] != "action" || last["status"] != "success" || last["messages_read"] != 42.0 {
		t.Fatalf("last poll %v", last)
	}

	if code, out := e.do("GET", "/v1/assets/nope/ingest", nil); code != 404 {
		t.Fatalf("status of an unknown asset: %d %v", code, out)
	}
	if code, out := e.do("POST", "/v1/actions/on_poll", map[string]any{"asset": "prod", "parameters": map[string]any{"artifact_count": "many", "container_count": -1}}); code != 400 ||
		!strings.Contains(fmt.Sprint(out), "artifact_count") || !strings.Contains(fmt.Sprint(out), "container_count") {
		t.Fatalf("bad parameters: %d %v", code, out)
	}
}

func TestOnPollInlineConfigNeedsAssetID(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	produceAlerts(t, c, 0, 0, 4)
	cfg := map[string]any{"hosts": strings.Join(c.ListenAddrs(), ","), "topic": "alerts", "read_from_beginning": true, "timeout": 3000,
		"appname": "kafka", "directory": "kafka_x"}

	code, out := e.do("POST", "/v1/actions/on_poll", map[string]any{"config": cfg})
	if code != 400 || !strings.Contains(fmt.Sprint(out), "asset_id") {
		t.Fatalf("inline without asset_id: %d %v", code, out)
	}

	// The SOAR app-run document, with is_poll_now.
	doc := map[string]any{"action": "on poll", "identifier": "on_poll", "asset_id": 17, "config": cfg, "is_poll_now": true,
		"parameters": []any{map[string]any{"artifact_count": 2, "container_count": 1}}}
	code, out = e.do("POST", "/v1/actions/on_poll", doc)
	if code != 200 || out["status"] != "success" {
		t.Fatalf("app-run poll now: %d %v", code, out)
	}
	res := out["results"].([]any)[0].(map[string]any)
	if s := res["summary"].(map[string]any); s["messages_read"] != 2.0 || s["poll_now"] != true {
		t.Fatalf("app-run poll now summary %v", s)
	}
	// Without is_poll_now: a poll kept under asset id 17.
	delete(doc, "is_poll_now")
	doc["parameters"] = []any{map[string]any{}}
	code, out = e.do("POST", "/v1/actions/on_poll", doc)
	if code != 200 || out["status"] != "success" {
		t.Fatalf("app-run poll: %d %v", code, out)
	}
	offs, err := e.db.Offsets(t.Context(), "soar:17", "alerts")
	if err != nil || offs[0] != 4 {
		t.Fatalf("position under soar:17 = %v, %v; want 4", offs, err)
	}

	// Its ingest status, through the inline route: the position and lag
	// kept under soar:17, the last poll.
	code, out = e.do("POST", "/v1/ingest/status", map[string]any{"config": cfg, "asset_id": 17})
	parts, _ := out["partitions"].([]any)
	last, _ := out["last_poll"].(map[string]any)
	if code != 200 || out["asset"] != "soar:17" || len(parts) != 1 || out["lag"] != 0.0 || last == nil || last["messages_read"] != 4.0 {
		t.Fatalf("inline ingest status: %d %v", code, out)
	}
	if p := parts[0].(map[string]any); p["stored_offset"] != 4.0 || p["log_end_offset"] != 4.0 {
		t.Fatalf("inline ingest status partition: %v", p)
	}
	// Another SOAR asset id has no position yet.
	code, out = e.do("POST", "/v1/ingest/status", map[string]any{"config": cfg, "asset_id": "18"})
	parts, _ = out["partitions"].([]any)
	if code != 200 || out["asset"] != "soar:18" || out["last_poll"] != nil || len(parts) != 1 || parts[0].(map[string]any)["stored_offset"] != nil {
		t.Fatalf("inline ingest status of a never-polled id: %d %v", code, out)
	}
	// Both members are required, and named when missing or bad.
	code, out = e.do("POST", "/v1/ingest/status", map[string]any{"asset_id": []int{1}})
	if code != 400 || !strings.Contains(fmt.Sprint(out), "config") || !strings.Contains(fmt.Sprint(out), "asset_id") {
		t.Fatalf("inline ingest status, bad body: %d %v", code, out)
	}
	code, out = e.do("POST", "/v1/ingest/status", map[string]any{"config": cfg})
	if code != 400 || !strings.Contains(fmt.Sprint(out), "asset_id") {
		t.Fatalf("inline ingest status without asset_id: %d %v", code, out)
	}
}
