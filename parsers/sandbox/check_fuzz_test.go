package sandbox

import (
	"errors"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/parsers/bundled/defaultparser"
)

// FuzzCheck feeds parser sources to Check, the static checks every parser
// body goes through before any worker sees it (FuzzParserBody in web
// reaches them through the request decoding). Check never panics, answers
// the same twice, and refuses with a CheckError whose problems are placed
// in the file checked and say what is wrong.
func FuzzCheck(f *testing.F) {
	for _, seed := range []string{
		defaultparser.Source,
		"package p\n" + sig,
		"package p\nimport s \"github.com/soarkafka/soarkafka/soar\"\nfunc ParseMessages(t string, ms []s.Message) (out []s.Result, err error) { return nil, nil }",
		"package p\nimport . \"github.com/soarkafka/soarkafka/soar\"\nfunc ParseMessages(topic string, messages []Message) ([]Result, error) { return nil, nil }",
		"import \"strings\"\n", "package p\nfunc (\n", "package p\nfunc Parse() {}\n",
		"package p\n" + sig + "func f() { for i := range 10 { _ = i } }\n",
		"package p\n" + sig + "func f(seq func(func(int) bool)) { for x := range seq { _ = x } }\n",
		"package p\n" + sig + "func f() { go func() {}() }\n",
		"package p\nimport \"time\"\n" + sig + "func f() { time.AfterFunc(time.Hour, func() {}) }\n",
		"package p\nimport \"strings\"\n" + sig + "func f(s string) { _ = strings.Lines(s) }\n",
		"package p\n" + sig + "var x = soar.Nope\n",
		"package p\nimport \"os\"\nimport \"net\"\nimport \"C\"\nimport \"../../etc\"\n",
		"package p\n" + sig + "type T[P any] struct{ v P }\nfunc g[P ~int | ~string](p P) P { return p }\n",
		"package p\n" + sig + "var _ = func() int { defer recover(); for { select {} } }()\n",
		"\xef\xbb\xbfpackage p\n", "package p\x00", "", "/*", "package p; import `strings`; var _ = strings.Repeat",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, source string) {
		err := Check("p.go", source)
		if again := Check("p.go", source); (err == nil) != (again == nil) || (err != nil && err.Error() != again.Error()) {
			t.Fatalf("Check(%q) answers differently twice: %v, then %v", source, err, again)
		}
		if err == nil {
			if !strings.Contains(source, "ParseMessages") {
				t.Fatalf("Check(%q) accepted a source without ParseMessages", source)
			}
			return
		}
		var ce *CheckError
		if !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("Check(%q): %v (%T) is not a CheckError with problems", source, err, err)
		}
		lines := strings.Count(source, "\n") + 1
		for _, p := range ce.Problems {
			if p.Pos.Filename != "p.go" || p.Pos.Line > lines || p.Message == "" {
				t.Fatalf("Check(%q): problem %v is not placed in p.go (%d lines) or says nothing", source, p, lines)
			}
		}
	})
}
