package assets

import (
	"encoding/json"
	"reflect"
	"testing"
)

// Decode puts the checked values into Config directly; the JSON round
// trip it did before is the reference: both give the same Config for every
// registry field, text that is not valid UTF-8 included.
func TestSetValuesAsTheJSONRoundTrip(t *testing.T) {
	roundTrip := func(values map[string]any) Config {
		root := map[string]any{}
		for k, v := range values {
			set(root, k, v)
		}
		b, err := json.Marshal(root)
		if err != nil {
			t.Fatal(err)
		}
		var c Config
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	defaults, given := map[string]any{}, map[string]any{}
	for i, f := range Fields {
		if f.Default != nil {
			defaults[f.Name] = f.Default
		}
		switch f.Type {
		case TypeString:
			given[f.Name] = "v\xff\xfe-" + f.Name + "\u2028<&>\xe2\x82"
		case TypeInteger:
			given[f.Name] = int64(1000 + i)
		case TypeBoolean:
			given[f.Name] = i%2 == 0
		default:
			t.Fatalf("field %s: type %s not covered", f.Name, f.Type)
		}
	}
	for what, values := range map[string]map[string]any{"defaults": defaults, "every field given": given} {
		var c Config
		if err := c.setValues(values); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if want := roundTrip(values); !reflect.DeepEqual(c, want) {
			t.Fatalf("%s: set %+v, the JSON round trip gives %+v", what, c, want)
		}
	}
	// Every registry field has a place in Config: none is dropped.
	for _, f := range Fields {
		if _, ok := configIndex[f.Name]; !ok {
			t.Errorf("registry field %s has no Config field", f.Name)
		}
	}
	// A value of the wrong Go type is an error, not a silent zero.
	var c Config
	if err := c.setValues(map[string]any{"timeout": "10"}); err == nil {
		t.Fatal("a string was set into timeout")
	}
}
