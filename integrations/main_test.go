package integrations_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/app"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

// TestMain lets this test binary be the soarkafka server the Python tests
// talk to (testenv.StartSoarkafka runs it with SOARKAFKA_TEST_MAIN=1), and
// its parser workers.
func TestMain(m *testing.M) {
	if os.Getenv("SOARKAFKA_TEST_MAIN") == "1" || (len(os.Args) > 1 && os.Args[1] == "parser-worker") {
		os.Exit(app.Main(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// startServer starts a soarkafka process on its embedded defaults.
func startServer(t *testing.T, args ...string) *testenv.Soarkafka {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return testenv.StartSoarkafka(t, exe, args...)
}

// TestHarnessReachesServer: Debian's python3 with requests reaches the
// server the harness started, and the API token is what it says.
func TestHarnessReachesServer(t *testing.T) {
	python := testenv.Python(t)
	srv := startServer(t)
	script := `import os, requests
r = requests.get(os.environ["URL"] + "/v1/assets", headers={"ph-auth-token": os.environ["TOKEN"]}, timeout=10)
print(r.status_code)
r = requests.get(os.environ["URL"] + "/v1/assets", headers={"ph-auth-token": "wrong"}, timeout=10)
print(r.status_code)`
	cmd := exec.Command(python, "-c", script)
	cmd.Env = append(os.Environ(), "URL="+srv.URL, "TOKEN="+srv.Token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 2 || got[0] != "200" || got[1] != "401" {
		t.Fatalf("python saw %q, want 200 with the token and 401 without", out)
	}
	if srv.Broker == "" {
		t.Fatal("no dev broker address")
	}
}
