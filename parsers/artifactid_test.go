package parsers_test

import (
	"testing"

	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
)

// The example of docs/on-poll.md's artifact id rule, through a sandboxed
// parser as a poll runs it: the body the worker encodes, and the
// identifier taken from it.
func TestArtifactIDRuleAsDocumented(t *testing.T) {
	svc := newService(t, sandbox.PoolConfig{})
	if _, err := svc.Create(t.Context(), parsers.Input{Name: "noid", Source: source(
		`return []soar.Result{{Container: soar.Container{Name: "c"}, Artifacts: []soar.Artifact{{Name: "login failed", Label: "event",
		CEF: map[string]any{"sourceAddress": "10.0.0.5", "destinationUserName": "bob"}}}}}, nil`)}); err != nil {
		t.Fatal(err)
	}
	b, err := svc.Bind(t.Context(), "a", "noid")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := b.Containers(t.Context(), "events", messages("m"))
	if err != nil || len(cs) != 1 || len(cs[0].Artifacts) != 1 {
		t.Fatalf("containers %+v, %v", cs, err)
	}
	a := cs[0].Artifacts[0]
	if want := `{"name":"login failed","label":"event","cef":{"destinationUserName":"bob","sourceAddress":"10.0.0.5"}}`; string(a.Body) != want {
		t.Errorf("body %s, want %s", a.Body, want)
	}
	if want := "sha256:bd32292c4c98c33a216631e19c9f037bd412e2272dbb2569cf503bda74e64698"; a.SourceDataIdentifier != want {
		t.Errorf("source_data_identifier %s, want %s", a.SourceDataIdentifier, want)
	}
}
