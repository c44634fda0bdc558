package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of Debian's chromium, which the console's
// browser tests drive (scripts/test-deps.sh installs it). Without it the
// test skips, saying what to install; under CI=true it fails instead.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "testenv: chromium is needed for the console's browser tests (apt-get install chromium, or run scripts/test-deps.sh)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// ChromiumFlags are the flags the browser tests start chromium with:
// headless, no sandbox (tests may run as root in a container), and none of
// its background traffic to the internet.
var ChromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
	"--disable-component-update", "--no-first-run",
	// Docker gives /dev/shm 64 MB, which chromium outgrows: its shared
	// memory goes to /tmp instead.
	"--disable-dev-shm-usage",
}
