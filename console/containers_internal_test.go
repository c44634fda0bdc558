package console

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseTimeInput(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{"", time.Time{}, ""},
		{"2026-12-05", time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), ""},
		{"2026-12-05T14:30", time.Date(2026, 12, 5, 14, 30, 0, 0, time.UTC), ""},
		{"2026-12-05 14:30:15", time.Date(2026, 12, 5, 14, 30, 15, 0, time.UTC), ""},
		{"2026-12-05T14:30:00+01:00", time.Date(2026, 12, 5, 13, 30, 0, 0, time.UTC), ""},
		{"2026-12-05T14:30:00.5Z", time.Date(2026, 12, 5, 14, 30, 0, 5e8, time.UTC), ""},
		{"yesterday", time.Time{}, `"yesterday" is not a time: write it UTC, as 2026-12-05T14:30`},
		{"2026-13-01", time.Time{}, `"2026-13-01" is not a time`},
	} {
		got, err := parseTimeInput(tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: %v, want an error with %q", tt.in, err, tt.wantErr)
			}
		case err != nil || !got.Equal(tt.want) || got.Location() != time.UTC:
			t.Errorf("%q: %v %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestHeadersJSON(t *testing.T) {
	for _, tt := range []struct{ in, want, wantErr string }{
		{"", "", ""},
		{"\n  \n", "", ""},
		{"a: 1", `{"a":"1"}`, ""},
		{"b: x\r\na: y:z\n", `{"b":"x","a":"y:z"}`, ""},
		{`q: "<img src=x onerror=alert(1)>"`, `{"q":"\"<img src=x onerror=alert(1)>\""}`, ""},
		{"a: 1\nno colon", "", `line 2 "no colon" is not a header`},
		{": value", "", `line 1 ": value" is not a header`},
	} {
		got, err := headersJSON(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: %v, want an error with %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%q: %s %v, want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestPageURLKeepsTheFilter(t *testing.T) {
	q := url.Values{"asset": {"a b"}, "severity": {"high"}, "page": {"3"}, "other": {"x"}}
	if got := pageURL(q, 4); got != "/containers?asset=a+b&page=4&severity=high" {
		t.Errorf("pageURL: %s", got)
	}
}
