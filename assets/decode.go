package assets

import (
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// configIndex maps each dotted JSON name of Config ("kerberos.realm") to
// its field's index path: the JSON tags tie Config to the registry (a test
// keeps the two in step), so they say where a checked value goes.
var configIndex = indexConfig(reflect.TypeFor[Config](), "", nil, map[string][]int{})

func indexConfig(t reflect.Type, prefix string, index []int, out map[string][]int) map[string][]int {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		if prefix != "" {
			name = prefix + "." + name
		}
		idx := append(index[:len(index):len(index)], i)
		if f.Type.Kind() == reflect.Struct {
			indexConfig(f.Type, name, idx, out)
			continue
		}
		out[name] = idx
	}
	return out
}

// setValues puts values, checked by coerce (a string, an int64 or a bool
// by registry name), into c's fields. A name without a field is skipped.
func (c *Config) setValues(values map[string]any) error {
	cv := reflect.ValueOf(c).Elem()
	for name, v := range values {
		idx, ok := configIndex[name]
		if !ok {
			continue
		}
		f := cv.FieldByIndex(idx)
		switch x := v.(type) {
		case string:
			if f.Kind() == reflect.String {
				f.SetString(validUTF8(x))
				continue
			}
		case int64:
			if f.Kind() == reflect.Int64 {
				f.SetInt(x)
				continue
			}
		case bool:
			if f.Kind() == reflect.Bool {
				f.SetBool(x)
				continue
			}
		}
		return fmt.Errorf("field %s: %T does not go into %s", name, v, f.Type())
	}
	return nil
}

// validUTF8 replaces each byte of s that is not valid UTF-8 with U+FFFD,
// as encoding/json does, so a Config holds the same text as when it came
// from a JSON document.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
