package ingest

import (
	"strings"
	"testing"
)

// TestPullCursorText: a cursor reads back as it was written; one without
// transactions keeps the v1 text older servers gave out, and a v1 cursor
// reads as the same ids with transactions 0.
func TestPullCursorText(t *testing.T) {
	for _, tc := range []struct {
		cursor PullCursor
		text   string
	}{
		{PullCursor{}, "v1-0-0"},
		{PullCursor{Container: 12, Artifact: 40}, "v1-12-40"},
		{PullCursor{ContainerTx: 7, Container: 12, ArtifactTx: 9, Artifact: 40}, "v2-7.12-9.40"},
		{PullCursor{ContainerTx: 0, Container: 3, ArtifactTx: 5, Artifact: 1}, "v2-0.3-5.1"},
	} {
		if got := tc.cursor.String(); got != tc.text {
			t.Errorf("%+v.String() = %q, want %q", tc.cursor, got, tc.text)
		}
		got, err := ParsePullCursor(tc.text)
		if err != nil || got != tc.cursor {
			t.Errorf("ParsePullCursor(%q) = %+v, %v; want %+v", tc.text, got, err, tc.cursor)
		}
	}
	if got, err := ParsePullCursor(""); err != nil || got != (PullCursor{}) {
		t.Errorf(`ParsePullCursor("") = %+v, %v; want the beginning`, got, err)
	}
	for _, bad := range []string{"v2-1-2", "v2-1.2", "v2-1.2-3", "v2-1.2-3.x", "v2--1.2-3.4", "v1-1.2-3.4", "v3-1-2", "12-40", "v1-1"} {
		if _, err := ParsePullCursor(bad); err == nil || !strings.Contains(err.Error(), "not a cursor of this server") {
			t.Errorf("ParsePullCursor(%q) error = %v, want one saying it is not a cursor of this server", bad, err)
		}
	}
}
