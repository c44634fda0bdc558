package soarkafka_test

import (
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka"
)

func TestNameProblem(t *testing.T) {
	for name, ok := range map[string]bool{"prod": true, "prod-eu.1_a": true, "": false, "-x": false, "a b": false, "a/b": false, strings.Repeat("a", 129): false} {
		if got := soarkafka.NameProblem(name) == ""; got != ok {
			t.Errorf("NameProblem(%q) ok=%v, want %v", name, got, ok)
		}
	}
}
