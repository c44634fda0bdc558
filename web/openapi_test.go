package web_test

import (
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"sort"
	"testing"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

// GET /openapi.json serves the API as the Go map literal it replaced
// described it. testdata/openapi-map-literal.json is that literal's output,
// captured once before the document moved into openapi.json; a deliberate
// change of the API edits both in the same commit, so the diff shows it.
// Path-level parameters are compared on each operation, where OpenAPI
// applies them (a route's query parameters are now generated onto its
// operation).
func TestOpenAPIServesTheDocumentItReplaced(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	resp, err := http.Get(e.srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/openapi-map-literal.json")
	if err != nil {
		t.Fatal(err)
	}
	var old map[string]any
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	if v := served["info"].(map[string]any)["version"]; v != "test" {
		t.Fatalf("info.version %v, want the server's version test", v)
	}

	oldOps, servedOps := operations(t, old), operations(t, served)
	for _, op := range sortedKeys(oldOps) {
		got, ok := servedOps[op]
		switch {
		case !ok:
			t.Errorf("%s: described before, missing now", op)
		case !reflect.DeepEqual(got, oldOps[op]):
			want, _ := json.Marshal(oldOps[op])
			have, _ := json.Marshal(got)
			t.Errorf("%s differs:\nwas  %s\nnow  %s", op, want, have)
		}
	}
	for op := range servedOps {
		if _, ok := oldOps[op]; !ok {
			t.Errorf("%s: described now, not before", op)
		}
	}

	oldSchemas := old["components"].(map[string]any)["schemas"].(map[string]any)
	servedSchemas := served["components"].(map[string]any)["schemas"].(map[string]any)
	for _, name := range sortedKeys(oldSchemas) {
		if !reflect.DeepEqual(servedSchemas[name], oldSchemas[name]) {
			t.Errorf("schema %s differs", name)
		}
	}
	if len(servedSchemas) != len(oldSchemas) {
		t.Errorf("%d schemas, was %d", len(servedSchemas), len(oldSchemas))
	}
	// AssetConfig is the registry's, now as then.
	var registry any
	rb, _ := json.Marshal(assets.JSONSchema())
	if err := json.Unmarshal(rb, &registry); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(servedSchemas["AssetConfig"], registry) {
		t.Error("AssetConfig is not the field registry's schema")
	}

	// The rest of the document, outside paths and schemas.
	for _, doc := range []map[string]any{old, served} {
		delete(doc, "paths")
		delete(doc["components"].(map[string]any), "schemas")
	}
	if !reflect.DeepEqual(served, old) {
		t.Errorf("document outside paths and schemas differs:\nwas  %v\nnow  %v", old, served)
	}
}

// operations returns each operation of doc keyed "method path", with its
// path's parameters put before its own.
func operations(t *testing.T, doc map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for path, item := range doc["paths"].(map[string]any) {
		item := item.(map[string]any)
		shared, _ := item["parameters"].([]any)
		for method, op := range item {
			if method == "parameters" {
				continue
			}
			op := op.(map[string]any)
			own, _ := op["parameters"].([]any)
			merged := map[string]any{}
			for k, v := range op {
				merged[k] = v
			}
			if params := append(append([]any{}, shared...), own...); len(params) > 0 {
				merged["parameters"] = params
			}
			out[method+" "+path] = merged
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
