package soarkafka_test

import (
	"encoding/json"
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

func TestJSONNumber(t *testing.T) {
	for _, tt := range []struct {
		in   any
		want float64
		ok   bool
	}{
		{float64(1.5), 1.5, true},
		{int(3), 3, true},
		{int64(-4), -4, true},
		{json.Number("12"), 12, true},
		{json.Number("x"), 0, false},
		{" 10 ", 10, true},
		{"1e3", 1000, true},
		{"10 minutes", 0, false}, // fmt.Sscan took it as 10
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"0x10", 0, false},
		{"1_000", 0, false},
		{"", 0, false},
		{true, 0, false},
		{nil, 0, false},
	} {
		got, ok := soarkafka.JSONNumber(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("JSONNumber(%#v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
