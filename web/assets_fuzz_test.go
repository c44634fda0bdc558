package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/actions"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/store"
	"github.com/soarkafka/soarkafka/web"
)

// FuzzAssetsAPI sends asset documents to the real handler over a real
// SQLite store: POST /v1/assets, and PUT /v1/assets/{name} of an asset that
// exists. Whatever the body, the answer is below 500, is JSON, an error
// names a code, and an asset shown never carries a secret's value. Saving
// an asset connects to nothing, so any host in the body is harmless.
func FuzzAssetsAPI(f *testing.F) {
	for _, seed := range []string{
		`{"name":"prod","config":{"hosts":"127.0.0.1:9092","topic":"alerts"}}`,
		`{"name":"prod","description":" d ","config":{"hosts":"a:1,b:2","topic":"alerts","sasl_mechanism":"PLAIN","username":"u","password":"secret-password"}}`,
		`{"name":"k","config":{"hosts":"h:1","topic":"t","use_kerberos":true,"ingest":{"interval":"1m"},"kerberos":{"principal":"p","password":"x","realm":"R }","kdc":"x"}}}`,
		`{"name":"k","config":{"hosts":"h:1","topic":"t","sasl_mechanism":"AWS_MSK_IAM","aws_iam":{"region":"eu-west-1","secret_access_key":"s3cr3t-key","access_key_id":"AK"}}}`,
		`{"name":"k","config":{"hosts":"h:1","topic":"t","use_ssl":true,"key_pem":"-----BEGIN PRIVATE KEY-----\nX\n-----END PRIVATE KEY-----","cert_pem":"C"}}`,
		`{"name":"k","config":{"hosts":"h:1","topic":"t","message_parser":"no-such-parser"}}`,
		`{"name":"k","config":{"hosts":"h:1","topic":"t","timeout":9223372036854775807}}`,
		`{"name":"k","config":{"hosts":"h:1","topic":"t","password":null,"kerberos":null}}`,
		`{"name":"-bad name","config":{"hosts":"broker1","topic":"a b"}}`,
		`{"name":"k","config":"not an object"}`, `{"name":"k"}`, `{"name":7,"config":[]}`,
		`{"name":"k","config":{"hosts":"h:1","topic":"t"},"extra":1}`,
		`{"name":"k","name":"k2","config":{}}`, `{"name":"a%00b"}`, "{\"name\":\"\xff\"}",
		``, `null`, `[]`, `{`, `{"name":"k"} {"name":"l"}`,
	} {
		f.Add([]byte(seed))
	}
	h := fuzzHandler(f)
	// An asset to update: a body's name may differ from it (refused) or
	// be absent (taken from the URL).
	if code, _ := serve(h, "POST", "/v1/assets", []byte(`{"name":"existing","config":{"hosts":"127.0.0.1:9092","topic":"alerts"}}`)); code != http.StatusCreated {
		f.Fatalf("create the asset to update: %d", code)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, out := serve(h, "POST", "/v1/assets", body)
		checkAnswer(t, "POST /v1/assets", body, code, out)
		if code == http.StatusCreated {
			var v struct{ Name string }
			_ = json.Unmarshal(out, &v)
			if code, out := serve(h, "DELETE", "/v1/assets/"+v.Name, nil); code != http.StatusNoContent {
				t.Fatalf("DELETE the created asset %q: %d %s", v.Name, code, out)
			}
		}
		code, out = serve(h, "PUT", "/v1/assets/existing", body)
		checkAnswer(t, "PUT /v1/assets/existing", body, code, out)
	})
}

// fuzzHandler is the API handler over a SQLite store of its own, built once
// per fuzz target (per fuzzing worker), not per input.
func fuzzHandler(f *testing.F) http.Handler {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, testenv.SQLiteURL(f), logger)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	key, _ := assets.NewKey()
	sealer, _ := assets.NewSealer(key)
	// Without an engine: these targets never run a parser, they only ask
	// whether one exists.
	parserService := parsers.NewService(db, nil)
	runner := actions.NewRunner(logger)
	f.Cleanup(runner.Close)
	return web.NewHandler(web.Options{
		Logger: logger, Assets: assets.NewService(db, sealer, assets.WithParsers(parserService)),
		Runner: runner, Parsers: parserService, Store: db, APIToken: token, MaxBodyBytes: 64 << 10, Version: "fuzz",
	})
}

// serve sends one request through h, without a network.
func serve(h http.Handler, method, path string, body []byte) (int, []byte) {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("ph-auth-token", token)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	out, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, out
}

// checkAnswer checks an asset route's answer: below 500, JSON, an error
// with a code and a message, and a shown asset without secret values.
func checkAnswer(t *testing.T, what string, body []byte, code int, out []byte) {
	t.Helper()
	if code >= 500 {
		t.Fatalf("%s %q: %d %s", what, body, code, out)
	}
	var answer map[string]any
	if err := json.Unmarshal(out, &answer); err != nil {
		t.Fatalf("%s %q: %d, answer is not a JSON object: %s", what, body, code, out)
	}
	if code >= 400 {
		e, _ := answer["error"].(map[string]any)
		if c, _ := e["code"].(string); c == "" || e["message"] == "" {
			t.Fatalf("%s %q: %d without an error code and message: %s", what, body, code, out)
		}
		return
	}
	cfg, _ := answer["config"].(map[string]any)
	for _, name := range assets.SecretFields() {
		parts := strings.Split(name, ".")
		m := cfg
		for _, p := range parts[:len(parts)-1] {
			m, _ = m[p].(map[string]any)
		}
		if _, shown := m[parts[len(parts)-1]]; shown {
			t.Fatalf("%s %q: the answer shows the secret %s: %s", what, body, name, out)
		}
	}
}
