package parsers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/parsers/bundled"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/soar"
)

// The native path (results as values) and the JSON path (results as the
// sandbox encodes them) must store the very same containers.
func TestContainersOfMatchesContainersFromJSON(t *testing.T) {
	engine := NewEngine(sandbox.PoolConfig{})
	defer engine.Close()
	values := map[string][]string{
		"default":    {`{"a":"<&>"}`, `plain text`, ``},
		"cloudtrail": {`{"eventVersion":"1.08","eventID":"e1","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","eventTime":"2026-11-23T12:00:00Z","sourceIPAddress":"203.0.113.7","awsRegion":"us-east-1","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"}}`},
		"ndjson":     {"{\"a\":1}\n{\"b\":\"<&>\"}\n"},
		"ocsf":       {`{"class_uid":3002,"class_name":"Authentication","severity_id":3,"time":1763899200000,"metadata":{"uid":"m1"}}`},
	}
	for _, b := range bundled.All() {
		t.Run(b.Name, func(t *testing.T) {
			var msgs []soar.Message
			for i, v := range values[b.Name] {
				msgs = append(msgs, soar.Message{Topic: "t", Partition: 2, Offset: int64(i), Value: []byte(v), Message: v,
					Timestamp: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)})
			}
			if len(msgs) == 0 {
				t.Fatalf("no sample messages for bundled parser %s", b.Name)
			}
			run, err := engine.RunBundled(b, "t", msgs)
			if err != nil {
				t.Fatal(err)
			}
			viaJSON, err := containersFromJSON(run.Results)
			if err != nil {
				t.Fatal(err)
			}
			results, err := engine.RunBundledResults(b, "t", msgs)
			if err != nil {
				t.Fatal(err)
			}
			native, err := containersOf(results)
			if err != nil {
				t.Fatal(err)
			}
			if len(native) != len(viaJSON) {
				t.Fatalf("%d containers natively, %d via JSON", len(native), len(viaJSON))
			}
			for i := range native {
				a, b := native[i], viaJSON[i]
				// The default parser names its container with the time.
				if !strings.HasPrefix(string(a.Body), `{"name":"Messages ingested`) && !bytes.Equal(a.Body, b.Body) || a.SourceDataIdentifier != b.SourceDataIdentifier || len(a.Artifacts) != len(b.Artifacts) {
					t.Fatalf("container %d differs:\n%s %s\n%s %s", i, a.SourceDataIdentifier, a.Body, b.SourceDataIdentifier, b.Body)
				}
				for j := range a.Artifacts {
					if fmt.Sprint(a.Artifacts[j].SourceDataIdentifier, string(a.Artifacts[j].Body)) != fmt.Sprint(b.Artifacts[j].SourceDataIdentifier, string(b.Artifacts[j].Body)) {
						t.Fatalf("artifact %d/%d differs:\n%s\n%s", i, j, a.Artifacts[j].Body, b.Artifacts[j].Body)
					}
				}
			}
		})
	}
}

func TestContainersReadsResults(t *testing.T) {
	in := []byte(` [ {"artifacts": [ {"cef": {"source_data_identifier": "nested"}, "source_data_identifier" : "0:1"}, {"name": "no id"} ],
		"container" : {"name": "c", "data": {"source_data_identifier": "x"}, "source_data_identifier": "c-1"}, "extra": [1, {"a": 2}]},
		{"container": {"name": "d"}, "artifacts": null} ] `)
	cs, err := containersFromJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].SourceDataIdentifier != "c-1" || cs[1].SourceDataIdentifier != "" || len(cs[1].Artifacts) != 0 {
		t.Fatalf("containers %+v", cs)
	}
	if got := string(cs[0].Body); got != `{"name": "c", "data": {"source_data_identifier": "x"}, "source_data_identifier": "c-1"}` {
		t.Errorf("container body %s", got)
	}
	a := cs[0].Artifacts
	if len(a) != 2 || a[0].SourceDataIdentifier != "0:1" || string(a[0].Body) != `{"cef": {"source_data_identifier": "nested"}, "source_data_identifier" : "0:1"}` {
		t.Fatalf("artifact 0 %+v", a)
	}
	sum := sha256.Sum256([]byte(`{"name": "no id"}`))
	if a[1].SourceDataIdentifier != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("artifact without id got %q, want the SHA-256 of its body", a[1].SourceDataIdentifier)
	}

	for _, bad := range []string{`{}`, `[{"artifacts": []}]`, `[{"container": []}]`, `[{"container": {}, "artifacts": [1]}]`,
		`[{"container": {"source_data_identifier": 5}}]`, `[{"container": {}`, `[{"container": {}, "artifacts": {}}]`,
		// The poll vouches that the bodies it stores are valid JSON
		// (ingest.Batch's BodiesValid): one that is not fails here.
		`[{"container": {}, "artifacts": [{"cef": }]}]`, `[{"container": {}, "artifacts": [{"a": 1 "b": 2}]}]`,
		`[{"container": {"a": [1,]}}]`, `[{"container": {}, "artifacts": [{"a": "\x"}]}]`} {
		if _, err := containersFromJSON([]byte(bad)); err == nil {
			t.Errorf("containersFromJSON(%s) = nil error", bad)
		}
	}
}
