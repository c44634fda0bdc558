package deliver

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/soarkafka/soarkafka/ingest"
)

// appendArtifacts writes each artifact as SOAR takes it, straight from its
// stored body: the members SOAR accepts as they were stored (nulls left
// out), soarkafka's own members dropped, the stored source_data_identifier
// over any in the body, and container_id when given.
func TestAppendArtifacts(t *testing.T) {
	arts := []ingest.StoredArtifact{
		{ID: 1, SourceDataIdentifier: "p0:o1", Body: json.RawMessage(`{"name": "a <b>", "cef": {"x": [1, 2.50, "é"]}, "label": null,
			"kafka_asset": "ours", "id": 99, "create_time": "t", "source_data_identifier": "from the body", "run_automation": false}`)},
		{ID: 2, SourceDataIdentifier: "p0:o2", Body: json.RawMessage(`{}`)},
	}
	for _, containerID := range []int64{0, 42} {
		out, err := appendArtifacts([]byte("prefix"), arts, containerID)
		if err != nil {
			t.Fatal(err)
		}
		if string(out[:6]) != "prefix" {
			t.Fatalf("the prefix was lost: %s", out)
		}
		var got []map[string]any
		if err := json.Unmarshal(out[6:], &got); err != nil {
			t.Fatalf("not JSON: %s: %v", out[6:], err)
		}
		want := []map[string]any{
			{"name": "a <b>", "cef": map[string]any{"x": []any{1.0, 2.5, "é"}}, "run_automation": false, "source_data_identifier": "p0:o1"},
			{"source_data_identifier": "p0:o2"},
		}
		if containerID != 0 {
			for _, w := range want {
				w["container_id"] = float64(containerID)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("container %d: got %v, want %v", containerID, got, want)
		}
	}
	// Numbers and strings go as stored, not re-encoded.
	out, err := appendArtifacts(nil, arts[:1], 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"name":"a <b>","cef":{"x": [1, 2.50, "é"]},"run_automation":false,"source_data_identifier":"p0:o1"}]`; string(out) != want {
		t.Fatalf("got %s\nwant %s", out, want)
	}
	// A stored body that is not an object is an error naming the artifact.
	if _, err := appendArtifacts(nil, []ingest.StoredArtifact{{ID: 7, Body: json.RawMessage(`[1]`)}}, 0); err == nil {
		t.Fatal("a list body was taken")
	}
}
