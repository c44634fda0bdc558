package soar

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DefaultGunzipLimit is the output bound of Gunzip when max is 0 or less.
const DefaultGunzipLimit = 64 << 20

// ErrTooLarge is returned by Gunzip when the output would pass its bound.
var ErrTooLarge = errors.New("soar: gunzipped data over its size limit")

// JSON decodes a message value that holds a JSON object. Numbers stay
// json.Number, so large integers (account ids, byte counts) keep their
// digits.
func JSON(value []byte) (map[string]any, error) {
	var m map[string]any
	if err := decode(value, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("soar: JSON value is not an object")
	}
	return m, nil
}

// DecodeJSON decodes any JSON value, numbers as json.Number.
func DecodeJSON(value []byte) (any, error) {
	var v any
	err := decode(value, &v)
	return v, err
}

func decode(value []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("soar: decode JSON: %w", err)
	}
	if dec.More() {
		return errors.New("soar: decode JSON: more than one value (NDJSON? split the lines first)")
	}
	return nil
}

// IsGzip reports whether b starts with the gzip magic bytes.
func IsGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// Gunzip returns the decompressed content of b, at most max bytes
// (DefaultGunzipLimit when max <= 0): past it, ErrTooLarge, so that a small
// compressed bomb cannot take the parser's memory.
func Gunzip(b []byte, max int) ([]byte, error) {
	if max <= 0 {
		max = DefaultGunzipLimit
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("soar: gunzip: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("soar: gunzip: %w", err)
	}
	if len(out) > max {
		return nil, ErrTooLarge
	}
	return out, nil
}

// Get returns the value at a dotted path in decoded JSON: "a.b.c" for
// objects, a number for an array index ("Records.0.eventName").
func Get(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	for _, part := range strings.Split(path, ".") {
		switch cur := v.(type) {
		case map[string]any:
			next, ok := cur[part]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(cur) {
				return nil, false
			}
			v = cur[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// GetString returns the value at a dotted path as text: a string as is, a
// number or boolean formatted, "" when absent, null, an object or an array.
func GetString(v any, path string) string {
	x, ok := Get(v, path)
	if !ok {
		return ""
	}
	switch s := x.(type) {
	case string:
		return s
	case json.Number:
		return s.String()
	case bool:
		return strconv.FormatBool(s)
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64)
	}
	return ""
}

// Truncate returns the first n characters (not bytes) of s.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}
