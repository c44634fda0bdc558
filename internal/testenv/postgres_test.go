package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// stoppingTB records how PostgresURL stops a test, without stopping this one
// (a real skip here would read as a gap in CI).
type stoppingTB struct {
	testing.TB
	skipped, failed string
}

func (s *stoppingTB) Skip(args ...any)  { s.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (s *stoppingTB) Fatal(args ...any) { s.failed = fmt.Sprint(args...); runtime.Goexit() }
func (s *stoppingTB) Fatalf(format string, args ...any) {
	s.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestPostgresURLUnreachable(t *testing.T) {
	// Port 1 on loopback refuses connections at once.
	t.Setenv(PostgresURLEnv, "postgres://postgres@127.0.0.1:1/test?connect_timeout=5")
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		tb := &stoppingTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			PostgresURL(tb)
			t.Errorf("CI=%q: PostgresURL returned with PostgreSQL unreachable", ci)
		}()
		<-done
		msg, other := tb.skipped, tb.failed
		if ci == "true" {
			msg, other = tb.failed, tb.skipped
		}
		if !strings.Contains(msg, "apt-get install postgresql") || !strings.Contains(msg, PostgresURLEnv) || other != "" {
			t.Errorf("CI=%q: skipped %q, failed %q; want a %s that says what to install or set",
				ci, tb.skipped, tb.failed, map[string]string{"": "skip", "true": "failure"}[ci])
		}
	}
}
