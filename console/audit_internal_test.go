package console

import (
	"reflect"
	"testing"

	"github.com/soarkafka/soarkafka/audit"
)

func TestChangeList(t *testing.T) {
	got := changeList(map[string]any{
		"config.topic":          map[string]any{"old": "a", "new": "b"},
		"config.hosts":          map[string]any{"new": "k:9092"},
		"config.timeout":        map[string]any{"old": float64(3000)},
		"config.delivery.token": audit.Secret,
		"retried":               float64(4),
		"config.labels":         map[string]any{"new": []any{"x"}, "extra": 1},
	})
	want := []auditChange{
		{"config.delivery.token", "changed"},
		{"config.hosts", `set to "k:9092"`},
		{"config.labels", `{"extra":1,"new":["x"]}`},
		{"config.timeout", "removed (was 3000)"},
		{"config.topic", `"a" → "b"`},
		{"retried", "4"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changeList:\n got %q\nwant %q", got, want)
	}
}
