package console

import (
	"strings"
	"testing"
	"time"
)

func TestLineDiff(t *testing.T) {
	a := strings.Split("package p\nfunc A() {}\nconst x = 1\nvar y int", "\n")
	b := strings.Split("package p\nconst x = 2\nvar y int\nvar z int", "\n")
	var got []string
	for _, l := range lineDiff(a, b) {
		got = append(got, l.Op+l.Text)
	}
	want := []string{" package p", "-func A() {}", "-const x = 1", "+const x = 2", " var y int", "+var z int"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lineDiff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Identical versions: no line added or removed.
	for _, l := range lineDiff(a, a) {
		if l.Op != " " {
			t.Errorf("a against itself: %q", l.Op+l.Text)
		}
	}
}

func TestPastedMessages(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"one\r\n\n  two  \n", []string{"one", "  two  "}},
		{`["text", {"a": 1}, 2]`, []string{"text", `{"a": 1}`, "2"}},
	} {
		msgs, err := pastedMessages(tc.in, now)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		var got []string
		for i, m := range msgs {
			got = append(got, m.Message)
			if string(m.Value) != m.Message || m.Offset != int64(i) || !m.Timestamp.Equal(now) {
				t.Errorf("%q: message %d is %+v", tc.in, i, m)
			}
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
	for in, want := range map[string]string{
		"  \n ": "paste at least one message",
		`[1, 2`: "not a JSON list",
		strings.Repeat("m\n", maxPlaygroundMessages+1): "at most 500",
	} {
		if _, err := pastedMessages(in, now); err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "messages: ") {
			t.Errorf("%.20q: %v, want an error on messages saying %q", in, err, want)
		}
	}
}

func TestSaveProblemsMarksCompileErrorLine(t *testing.T) {
	if l := blamedLine(`parser "x": x.go:7:3: undefined: foo`); l != 7 {
		t.Errorf("blamedLine: %d, want 7", l)
	}
	if l := blamedLine("no position"); l != 0 {
		t.Errorf("blamedLine without a position: %d", l)
	}
}
