package web_test

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// topicOffsets renders a topics answer as "topic p<partition>:<earliest>-<latest>"
// lines, checking that every partition has a leader and no error.
func topicOffsets(t *testing.T, out map[string]any) []string {
	t.Helper()
	var lines []string
	for _, tp := range out["topics"].([]any) {
		tp := tp.(map[string]any)
		line := tp["topic"].(string)
		for _, p := range tp["partitions"].([]any) {
			p := p.(map[string]any)
			if p["leader"].(float64) < 0 || p["error"] != nil {
				t.Fatalf("partition %v of %s: want a leader and no error", p, tp["topic"])
			}
			line += fmt.Sprintf(" p%v:%v-%v", p["partition"], p["earliest_offset"], p["latest_offset"])
		}
		lines = append(lines, line)
	}
	return lines
}

func TestTopics(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	c := testenv.NewKafka(t, kfake.SeedTopics(2, "alerts"))
	testenv.CreateKafkaTopic(t, c, "other", 1)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	internal := "true"
	if resp, err := kadm.NewClient(testenv.KafkaClient(t, c)).CreateTopic(ctx, 1, 1, map[string]*string{"kfake.is_internal": &internal}, "__internal"); err != nil || resp.Err != nil {
		t.Fatalf("create internal topic: %v %v", err, resp.Err)
	}
	produceAlerts(t, c, 0, 0, 5)
	produceAlerts(t, c, 1, 0, 3)
	testenv.DeleteKafkaRecords(t, c, "alerts", 0, 2)
	hosts := strings.Join(c.ListenAddrs(), ",")
	cfg := map[string]any{"hosts": hosts, "topic": "alerts", "timeout": 3000}
	if code, out := e.do("POST", "/v1/assets", asset("prod", cfg)); code != 201 {
		t.Fatalf("create asset: %d %v", code, out)
	}

	code, out := e.do("GET", "/v1/topics?asset=prod", nil)
	if got, want := topicOffsets(t, out), []string{"alerts p0:2-5 p1:0-3", "other p0:0-0"}; code != 200 || !reflect.DeepEqual(got, want) {
		t.Fatalf("all topics: %d %v, want %v (internal topics left out)", code, got, want)
	}
	produceAlerts(t, c, 1, 3, 4)
	code, out = e.do("GET", "/v1/topics?asset=prod&topic=alerts", nil)
	if got, want := topicOffsets(t, out), []string{"alerts p0:2-5 p1:0-7"}; code != 200 || !reflect.DeepEqual(got, want) {
		t.Fatalf("topic alerts: %d %v, want %v", code, got, want)
	}
	code, out = e.do("GET", "/v1/topics?asset=prod&topic=__internal", nil)
	if got, want := topicOffsets(t, out), []string{"__internal p0:0-0"}; code != 200 || !reflect.DeepEqual(got, want) {
		t.Fatalf("internal topic asked for by name: %d %v, want %v", code, got, want)
	}

	code, out = e.do("GET", "/v1/topics?asset=prod&topic=nope", nil)
	if msg := fmt.Sprint(errField(out, "message")); code != 404 || !strings.Contains(msg, `topic "nope" does not exist`) || !strings.Contains(msg, hosts) {
		t.Fatalf("unknown topic: %d %v", code, out)
	}
	if code, out = e.do("GET", "/v1/topics?asset=nope", nil); code != 404 {
		t.Fatalf("unknown asset: %d %v", code, out)
	}
	code, out = e.do("GET", "/v1/topics?topic=a%20b", nil)
	if fields := fmt.Sprint(errField(out, "fields")); code != 400 || !strings.Contains(fields, "field:asset") || !strings.Contains(fields, "field:topic") {
		t.Fatalf("bad query: %d %v, want 400 naming asset and topic", code, out)
	}

	// An inline configuration, as the SOAR app-run document has it.
	inline := map[string]any{"hosts": hosts, "topic": "alerts", "timeout": 3000, "appname": "kafka", "directory": "kafka_x"}
	code, out = e.do("POST", "/v1/topics", map[string]any{"config": inline, "asset_id": 5, "topic": "other"})
	if got, want := topicOffsets(t, out), []string{"other p0:0-0"}; code != 200 || !reflect.DeepEqual(got, want) {
		t.Fatalf("inline, topic other: %d %v, want %v", code, got, want)
	}
	code, out = e.do("POST", "/v1/topics", map[string]any{"config": inline, "asset_id": 5})
	if got, want := topicOffsets(t, out), []string{"alerts p0:2-5 p1:0-7", "other p0:0-0"}; code != 200 || !reflect.DeepEqual(got, want) {
		t.Fatalf("inline, all topics: %d %v, want %v", code, got, want)
	}
	code, out = e.do("POST", "/v1/topics", map[string]any{"asset_id": []int{1}, "topic": "a b"})
	if fields := fmt.Sprint(errField(out, "fields")); code != 400 || !strings.Contains(fields, "field:config") ||
		!strings.Contains(fields, "field:asset_id") || !strings.Contains(fields, "field:topic") {
		t.Fatalf("bad body: %d %v, want 400 naming config, asset_id and topic", code, out)
	}
	code, out = e.do("POST", "/v1/topics", map[string]any{"config": map[string]any{"topic": "alerts"}})
	if fields := fmt.Sprint(errField(out, "fields")); code != 400 || !strings.Contains(fields, "field:hosts") {
		t.Fatalf("config without hosts: %d %v, want 400 naming hosts", code, out)
	}
}

func TestTopicsUnreachableBroker(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	t0 := time.Now()
	code, out := e.do("POST", "/v1/topics", map[string]any{"config": map[string]any{"hosts": closed, "topic": "alerts", "timeout": 1000}})
	msg := fmt.Sprint(errField(out, "message"))
	if code != 503 || !strings.Contains(msg, "hosts "+closed) || !strings.Contains(msg, "connection refused") {
		t.Fatalf("unreachable broker: %d %v, want 503 naming the hosts and the refusal", code, out)
	}
	if d := time.Since(t0); d > 8*time.Second {
		t.Fatalf("answered after %s; the asset's timeout bounds each step", d)
	}
}
