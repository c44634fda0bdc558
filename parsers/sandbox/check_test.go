package sandbox

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/parsers/bundled/defaultparser"
	"github.com/traefik/yaegi/stdlib"
)

func TestCheckAccepts(t *testing.T) {
	tests := map[string]string{
		"default parser": defaultparser.Source,
		"aliased soar and other names": `package p
import s "github.com/soarkafka/soarkafka/soar"
func ParseMessages(t string, ms []s.Message) (out []s.Result, err error) { return nil, nil }`,
		"dot import": `package p
import . "github.com/soarkafka/soarkafka/soar"
func ParseMessages(topic string, messages []Message) ([]Result, error) { return nil, nil }`,
		"every allowed import": func() string {
			var b strings.Builder
			b.WriteString("package p\nimport (\n")
			for _, p := range AllowedImports() {
				b.WriteString("\t_ \"" + p + "\"\n")
			}
			b.WriteString(")\nimport \"github.com/soarkafka/soarkafka/soar\"\nfunc ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) { for i := range messages { _ = i }; return nil, nil }\n")
			return b.String()
		}(),
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			if err := Check("p.go", src); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
}

const sig = "import \"github.com/soarkafka/soarkafka/soar\"\nfunc ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) { return nil, nil }\n"

func TestCheckRefuses(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings of the error
	}{
		{"no package clause", "import \"strings\"\n", []string{"p.go:1:1", "package clause"}},
		{"syntax error", "package p\nfunc (\n", []string{"p.go:2:8: expected"}},
		{"no ParseMessages", "package p\nfunc Parse() {}\n", []string{"p.go:1:9", "ParseMessages is not defined", Signature}},
		{"wrong result", "package p\nimport \"github.com/soarkafka/soarkafka/soar\"\nfunc ParseMessages(topic string, messages []soar.Message) []soar.Result { return nil }\n",
			[]string{"p.go:3:1", "wrong signature", "func ParseMessages(topic string, messages []soar.Message) []soar.Result", Signature}},
		{"variadic", "package p\nimport \"github.com/soarkafka/soarkafka/soar\"\nfunc ParseMessages(topic string, messages ...soar.Message) ([]soar.Result, error) { return nil, nil }\n", []string{"wrong signature"}},
		{"soar not imported", "package p\nfunc ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) { return nil, nil }\n", []string{"wrong signature"}},
		{"method", "package p\n" + strings.Replace(sig, "func ", "type T int\nfunc (T) ", 1), []string{"ParseMessages is not defined"}},
		{"range over int literal", "package p\n" + sig + "func f() { for i := range 10 { _ = i } }\n", []string{"p.go:4:12", "range over an integer is not supported by the parser interpreter"}},
		{"range over int variable", "package p\n" + sig + "func f(n int) { for range n {} }\n", []string{"p.go:4:17", "not supported by the parser interpreter"}},
		{"range over len", "package p\n" + sig + "func f(s []string) { for i := range len(s) { _ = i } }\n", []string{"p.go:4:22", "range over an integer"}},
		{"range over func", "package p\n" + sig + "func f(seq func(func(int) bool)) { for x := range seq { _ = x } }\n", []string{"p.go:4:36", "range over a function"}},
		{"go statement", "package p\n" + sig + "func f() { go func() {}() }\n", []string{"p.go:4:12", "goroutines are not allowed"}},
		{"time.AfterFunc", "package p\nimport \"time\"\n" + sig + "func f() { time.AfterFunc(time.Hour, func() {}) }\n", []string{"p.go:5:17", "time.AfterFunc is refused"}},
		{"newer stdlib API", "package p\nimport \"strings\"\n" + sig + "func f(s string) { _ = strings.Lines(s) }\n", []string{"p.go:5:32", "strings.Lines is not supported by the parser interpreter"}},
		{"unknown soar symbol", "package p\n" + sig + "var x = soar.Nope\n", []string{"p.go:4:14", "soar.Nope is not defined"}},
		{"several problems at once", "package p\nimport \"os\"\nimport \"net\"\n", []string{"p.go:2:8", "p.go:3:8", "ParseMessages is not defined"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check("p.go", tt.src)
			if err == nil {
				t.Fatal("Check accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCheckRefusedImports(t *testing.T) {
	for _, imp := range []string{"os", "os/exec", "io/ioutil", "io", "net", "net/http", "syscall", "unsafe", "reflect",
		"plugin", "runtime", "runtime/debug", "embed", "hash/maphash", "C", "./x", "../../etc", "/etc",
		"github.com/traefik/yaegi/stdlib", "github.com/traefik/yaegi/stdlib/stdlib", "example.com/x", "src/x"} {
		t.Run(imp, func(t *testing.T) {
			src := "package p\n\nimport (\n\t\"strings\"\n\t\"" + imp + "\"\n)\n" + sig
			err := Check("p.go", src)
			if err == nil {
				t.Fatal("Check accepted it")
			}
			ce, ok := err.(*CheckError)
			if !ok || len(ce.Problems) != 1 {
				t.Fatalf("want one problem, got %#v", err)
			}
			if p := ce.Problems[0]; p.Pos.Line != 5 || p.Pos.Column != 2 || !strings.Contains(p.Message, `"`+imp+`"`) {
				t.Errorf("problem %q: want line 5 col 2 naming %q", p, imp)
			}
			if !strings.Contains(err.Error(), "p.go:5:2: import") {
				t.Errorf("error %q lacks file:line:col", err)
			}
		})
	}
}

// TestAllowListInYaegi: every allowed package has a symbol table in the
// yaegi version we use, and the allow-list never hands out yaegi's
// everything-table.
func TestAllowListInYaegi(t *testing.T) {
	syms := interpreterSymbols()
	for path, name := range allowedStdlib {
		if stdlib.Symbols[symbolKey(path, name)] == nil {
			t.Errorf("yaegi has no symbols for %s (key %s)", path, symbolKey(path, name))
		}
	}
	if len(syms) != len(allowedStdlib)+2 || syms["."] == nil || syms[symbolKey(SoarImportPath, "soar")] == nil {
		t.Errorf("interpreter symbols: %d tables", len(syms))
	}
	for k := range syms {
		if strings.Contains(k, "yaegi") || strings.HasPrefix(k, "os/") || strings.HasPrefix(k, "unsafe") || strings.HasPrefix(k, "reflect") {
			t.Errorf("interpreter symbols contain %s", k)
		}
	}
}

// TestSoarSymbolsUpToDate fails when package soar's exported API changes
// without `go generate ./parsers/sandbox`.
func TestSoarSymbolsUpToDate(t *testing.T) {
	dir := filepath.Join("..", "..", "soar")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	fset := token.NewFileSet()
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					want = append(want, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							want = append(want, s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								want = append(want, n.Name)
							}
						}
					}
				}
			}
		}
	}
	var got []string
	for k := range Symbols[symbolKey(SoarImportPath, "soar")] {
		got = append(got, k)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("soar_symbols.go is out of date: run go generate ./parsers/sandbox\n got %v\nwant %v", got, want)
	}
}
