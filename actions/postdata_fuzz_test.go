package actions

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzSplitJSON checks SplitJSON and FormatJSON against encoding/json as an
// oracle: they never panic, every message is valid JSON, a list gives one
// message per element and nothing is lost or changed but layout.
func FuzzSplitJSON(f *testing.F) {
	for _, seed := range []string{
		`[1, "a", {"b": [2, 3]}, null, true, false, -0.5e10]`,
		`[[1,2]]`, `[[]]`, `[]`, `[ ]`, `[[[[[]]]]]`, `[{}, [], "", 0]`,
		`{"a": {"b": {"c": [1, {"d": null}]}}, "z": "last"}`,
		`"é 日本 \u00e9 \ud83d\ude00 \n\t\"\\ \/ <>&"`,
		"\"\xff\xfe invalid utf-8\"",
		``, ` `, "\n\t\r ", "\u00a0", "1\u00a0", "\ufeff[1]",
		`42`, `-`, `1.`, `1e`, `01`, `null`, `nul`, `tru`, `"unterminated`,
		`[1,]`, `[1 2]`, `{"a" 1}`, `{"a":1,}`, `{a:1}`, `['x']`,
		"1 2", `[1] [2]`, "{\"a\":1}\n{\"b\":2}", `[1]]`, `]`, `}`, `[`, `{`,
		"[\n  {\"a\": 1},\n  {\"b\": }\n]",
		strings.Repeat("[", 100) + strings.Repeat("]", 100),
		strings.Repeat("[", 9999) + strings.Repeat("]", 9999), // 400 MB indented
		strings.Repeat(`[{"a":`, 300) + "1" + strings.Repeat("}]", 300),
		`[{"k": [ ], "e": { }, "s": "a,b:{c}[d]\"q\\\\", "n": -1.5e+3}]`,
		"garbage <html>&amp;</html>", "\x00\x01\x02",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := SplitJSON(data)

		// The oracle: encoding/json. It lets invalid UTF-8 in strings
		// pass; SplitJSON may refuse it.
		valid := json.Valid(data)
		trimmed := bytes.TrimSpace(data)
		var elems []json.RawMessage
		isList := valid && trimmed[0] == '[' && json.Unmarshal(trimmed, &elems) == nil

		if err != nil {
			if !strings.HasPrefix(err.Error(), "data is ") {
				t.Errorf("error %q does not start with \"data is \"", err)
			}
			if valid && utf8.Valid(data) && !(isList && len(elems) == 0) {
				t.Fatalf("SplitJSON(%q) refused valid JSON: %v", data, err)
			}
			if isList && len(elems) == 0 && !strings.Contains(err.Error(), "[[]]") {
				t.Errorf("empty list: error %q gives no [[]] hint", err)
			}
			return
		}
		if !valid {
			t.Fatalf("SplitJSON(%q) accepted invalid JSON: %q", data, msgs)
		}
		if len(msgs) == 0 {
			t.Fatalf("SplitJSON(%q) gave no message and no error", data)
		}
		for i, m := range msgs {
			if !json.Valid(m) {
				t.Fatalf("message %d %q is not valid JSON", i, m)
			}
			size := indentedSize(m)
			for _, format := range []string{"pretty", "compact"} {
				if format == "pretty" && size > 1<<20 {
					continue // as PostData: refused before it is laid out
				}
				out := FormatJSON(m, format)
				if format == "pretty" && len(out) != size {
					t.Fatalf("indentedSize(%q) = %d, laid out in %d bytes", m, size, len(out))
				}
				if !json.Valid(out) {
					t.Fatalf("FormatJSON(%q, %s) = %q: not valid JSON", m, format, out)
				}
				if got, want := compactJSON(t, out), compactJSON(t, m); got != want {
					t.Fatalf("FormatJSON(%q, %s) = %q: changed the value (%s, want %s)", m, format, out, got, want)
				}
				if format == "compact" && string(out) != compactJSON(t, m) {
					t.Fatalf("FormatJSON(%q, compact) = %q", m, out)
				}
			}
		}
		if isList {
			if len(msgs) != len(elems) {
				t.Fatalf("SplitJSON(%q): %d messages for a list of %d", data, len(msgs), len(elems))
			}
			parts := make([]string, len(msgs))
			for i, m := range msgs {
				parts[i] = compactJSON(t, m)
			}
			if got, want := "["+strings.Join(parts, ",")+"]", compactJSON(t, trimmed); got != want {
				t.Fatalf("SplitJSON(%q): messages %s, want the list's elements %s", data, got, want)
			}
			return
		}
		if len(msgs) != 1 || compactJSON(t, msgs[0]) != compactJSON(t, trimmed) {
			t.Fatalf("SplitJSON(%q) = %q, want the one value", data, msgs)
		}
	})
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, bytes.TrimSpace(b)); err != nil {
		t.Fatalf("compact %q: %v", b, err)
	}
	return buf.String()
}
