package deliver

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	w := &Worker{backoffBase: 500 * time.Millisecond, backoffCap: 60 * time.Second}
	for _, tc := range []struct {
		attempt    int
		retryAfter time.Duration
		max        time.Duration
	}{
		{1, 0, 500 * time.Millisecond},
		{2, 0, time.Second},
		{5, 0, 8 * time.Second},
		{8, 0, 60 * time.Second},
		{100, 0, 60 * time.Second},
	} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := w.backoff(tc.attempt, tc.retryAfter)
			if d < 0 || d > tc.max {
				t.Fatalf("attempt %d: %s, want 0..%s", tc.attempt, d, tc.max)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("attempt %d: %d distinct waits in 200: no jitter", tc.attempt, len(seen))
		}
	}
	if d := w.backoff(1, 7*time.Second); d != 7*time.Second {
		t.Errorf("Retry-After 7s: waited %s", d)
	}
	if d := w.backoff(1, 48*time.Hour); d != maxRetryAfter {
		t.Errorf("Retry-After 48h: waited %s, want the cap", d)
	}
}

func TestRetryAfter(t *testing.T) {
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		v        string
		min, max time.Duration
	}{
		{"", 0, 0},
		{"3", 3 * time.Second, 3 * time.Second},
		{" 0 ", 0, 0},
		{"-5", 0, 0},
		{"soon", 0, 0},
		{future, 85 * time.Second, 90 * time.Second},
		{"Mon, 02 Jan 2006 15:04:05 GMT", 0, 0}, // past
	} {
		if d := retryAfter(tc.v); d < tc.min || d > tc.max {
			t.Errorf("Retry-After %q: %s, want %s..%s", tc.v, d, tc.min, tc.max)
		}
	}
}

func TestPyString(t *testing.T) {
	for in, want := range map[string]string{
		`abc`:       `"abc"`,
		`a"b`:       `"a\"b"`,
		`a\b`:       `"a\\b"`,
		"line\nnew": `"line\nnew"`,
	} {
		if got := pyString(in); got != want {
			t.Errorf("pyString(%q) = %s, want %s", in, got, want)
		}
	}
}
