package app

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The server records a change made through its API in the store and serves
// it at /v1/audit, the client address forwarded by a proxy in
// audit.trusted_proxies.
func TestServerRecordsAudit(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.DevBroker.Enabled = false
	cfg.Audit.TrustedProxies = []string{"127.0.0.1"}
	s, _, _ := startServer(t, cfg)
	tok, err := os.ReadFile(filepath.Join(dir, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+s.Addr()+path, strings.NewReader(body))
		req.Header.Set("ph-auth-token", strings.TrimSpace(string(tok)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", "198.51.100.7")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, out := do("POST", "/v1/assets", `{"name": "a", "config": {"hosts": "127.0.0.1:9092", "topic": "t", "sasl_mechanism": "PLAIN", "username": "u", "password": "app-Audit-pw"}}`); code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}
	code, out := do("GET", "/v1/audit", "")
	data, _ := out["data"].([]any)
	if code != 200 || len(data) != 1 {
		t.Fatalf("audit: %d %v", code, out)
	}
	ev := data[0].(map[string]any)
	b, _ := json.Marshal(ev)
	if ev["client"] != "198.51.100.7" || ev["action"] != "create" || ev["version"] != 1.0 ||
		ev["changes"].(map[string]any)["config.password"] != "changed" || strings.Contains(string(b), "app-Audit-pw") {
		t.Fatalf("event %s", b)
	}
}
