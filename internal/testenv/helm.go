package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// HelmInstall is the command that installs the helm the chart's tests run
// (scripts/test-deps.sh runs it); helm is a Go program, built from the
// module proxy like the project's own dependencies.
const HelmInstall = "go install helm.sh/helm/v4/cmd/helm@v4.3.2"

// Helm returns the path of helm, on PATH or where `go install` puts it
// ($(go env GOBIN), else $(go env GOPATH)/bin). Without it the test skips, naming the command that
// installs it; under CI=true it fails instead.
func Helm(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		gobin, gopath, _ := strings.Cut(string(out), "\n")
		dirs := []string{strings.TrimSpace(gobin)}
		for _, dir := range filepath.SplitList(strings.TrimSpace(gopath)) {
			dirs = append(dirs, filepath.Join(dir, "bin"))
		}
		for _, dir := range dirs {
			if dir == "" {
				continue
			}
			p := filepath.Join(dir, "helm")
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	msg := "testenv: helm is needed for the Helm chart's tests (" + HelmInstall + ", or run scripts/test-deps.sh)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
