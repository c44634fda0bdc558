package parsers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
)

// Bound.Containers is the one call a poll makes: a bundled parser's
// results and a user parser's come back as the containers to store, and a
// parser's failure is told apart from the server's.
func TestBoundContainers(t *testing.T) {
	svc := newService(t, sandbox.PoolConfig{})
	ctx := t.Context()

	native, err := svc.Bind(ctx, "a", "")
	if err != nil || !native.Native {
		t.Fatalf("Bind default: %+v, %v", native, err)
	}
	cs, err := native.Containers(ctx, "events", messages(`{"k":"v"}`, "plain"))
	if err != nil || len(cs) == 0 || len(cs[0].Body) == 0 {
		t.Fatalf("bundled default: %d containers, %v", len(cs), err)
	}

	if _, err := svc.Create(ctx, parsers.Input{Name: "arts", Source: source(
		`return []soar.Result{{Container: soar.Container{Name: "c", SourceDataIdentifier: "c-1"}, Artifacts: []soar.Artifact{{Name: "no id"}}}}, nil`)}); err != nil {
		t.Fatal(err)
	}
	user, err := svc.Bind(ctx, "a", "arts")
	if err != nil || user.Native {
		t.Fatalf("Bind arts: %+v, %v", user, err)
	}
	cs, err = user.Containers(ctx, "events", messages("m"))
	if err != nil || len(cs) != 1 || cs[0].SourceDataIdentifier != "c-1" || len(cs[0].Artifacts) != 1 {
		t.Fatalf("user parser: %+v, %v", cs, err)
	}
	sum := sha256.Sum256(cs[0].Artifacts[0].Body)
	if got, want := cs[0].Artifacts[0].SourceDataIdentifier, "sha256:"+hex.EncodeToString(sum[:]); got != want || !strings.Contains(string(cs[0].Artifacts[0].Body), `"no id"`) {
		t.Errorf("artifact %s id %q, want %q", cs[0].Artifacts[0].Body, got, want)
	}

	if _, err := svc.Create(ctx, parsers.Input{Name: "fails", Source: source(`if messages[0].Message == "boom" { return nil, errors.New("bad message") }
	return nil, nil`)}); err != nil {
		t.Fatal(err)
	}
	failing, err := svc.Bind(ctx, "a", "fails")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := failing.Containers(ctx, "events", messages("boom")); err == nil || !parsers.IsParserFailure(err) {
		t.Errorf("a parser's error: %v, IsParserFailure %v; want true", err, parsers.IsParserFailure(err))
	}
	if parsers.IsParserFailure(errors.New("database is locked")) || parsers.IsParserFailure(context.Canceled) {
		t.Error("IsParserFailure is true for the server's own errors")
	}
}
