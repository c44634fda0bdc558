package soarkafka_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const modulePath = "github.com/soarkafka/soarkafka"

// TestPackageMap checks the package map of docs/design.md against the
// imports `go list` reports: every package has a row, every row is a
// package, and each package imports exactly the module packages its row
// lists. The map is the shape a newcomer reads; this keeps it true.
func TestPackageMap(t *testing.T) {
	allowed, err := readPackageMap(filepath.Join("docs", "design.md"))
	if err != nil {
		t.Fatal(err)
	}
	imports, err := listImports(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkPackageMap(allowed, imports) {
		t.Error(p)
	}
}

// TestPackageMapCheck checks that the comparison reports each kind of
// drift, so that TestPackageMap cannot pass by reporting nothing.
func TestPackageMapCheck(t *testing.T) {
	allowed := map[string][]string{
		".":       nil,
		"web":     {".", "actions"},
		"actions": {"."},
		"gone":    nil,
	}
	imports := map[string][]string{
		".":       nil,
		"web":     {".", "actions", "store"},
		"actions": nil,
		"store":   {"."},
	}
	got := checkPackageMap(allowed, imports)
	want := []string{
		`package "actions": its row lists "." but it no longer imports it; remove it from the row`,
		`package "gone": in the package map of docs/design.md, but go list has no such package; remove its row`,
		`package "store": missing from the package map of docs/design.md; add a row saying what it owns and what it imports`,
		`package "web" imports "store", which its row in docs/design.md does not allow; add it to the row (and say why if it goes against the direction) or remove the import`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p := checkPackageMap(imports, imports); len(p) != 0 {
		t.Fatalf("a map equal to the imports: %v", p)
	}
}

func TestReadPackageMap(t *testing.T) {
	doc := "# Design\n\n## Package map\n\n| package | owns | may import |\n| --- | --- | --- |\n" +
		"| `.` | errors | (none) |\n" +
		"| `web` | the edge, not `soar` | `.`, `actions` |\n\n## Notes\n\n| `x` | y | `z` |\n"
	path := filepath.Join(t.TempDir(), "design.md")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readPackageMap(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got["."]) != 0 || !slices.Equal(got["web"], []string{".", "actions"}) {
		t.Fatalf("got %v", got)
	}
	if err := os.WriteFile(path, []byte("# Design\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readPackageMap(path); err == nil {
		t.Fatal("a design.md without a package map should be an error")
	}
}

var backticked = regexp.MustCompile("`([^`]+)`")

// readPackageMap reads the table under "## Package map": for each package
// (its path in the module, "." for the root), the module packages it may
// import.
func readPackageMap(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Package map"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 3 {
			return nil, fmt.Errorf("%s: package map row %q: want 3 cells (package, owns, may import)", path, line)
		}
		pkg := strings.Trim(strings.TrimSpace(cells[0]), "`")
		if _, dup := rows[pkg]; dup {
			return nil, fmt.Errorf("%s: package %q has two rows", path, pkg)
		}
		deps := []string{}
		for _, m := range backticked.FindAllStringSubmatch(cells[2], -1) {
			deps = append(deps, m[1])
		}
		rows[pkg] = deps
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no package map (a table under \"## Package map\")", path)
	}
	return rows, nil
}

// listImports runs go list on the module: for each package, the module
// packages its non-test files import, both as paths in the module.
func listImports(t *testing.T) (map[string][]string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.CommandContext(t.Context(), gobin, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	rel := func(p string) (string, bool) {
		if p == modulePath {
			return ".", true
		}
		r, ok := strings.CutPrefix(p, modulePath+"/")
		return r, ok
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, ok := rel(fields[0])
		if !ok {
			return nil, fmt.Errorf("go list: package %q outside the module", fields[0])
		}
		deps := []string{}
		for _, d := range fields[1:] {
			if r, ok := rel(d); ok {
				deps = append(deps, r)
			}
		}
		imports[pkg] = deps
	}
	return imports, nil
}

// checkPackageMap compares the map with the imports and returns every
// difference, sorted, each saying what to change.
func checkPackageMap(allowed, imports map[string][]string) []string {
	var problems []string
	for pkg, deps := range imports {
		ok, listed := allowed[pkg]
		if !listed {
			problems = append(problems, fmt.Sprintf("package %q: missing from the package map of docs/design.md; add a row saying what it owns and what it imports", pkg))
			continue
		}
		for _, d := range deps {
			if !slices.Contains(ok, d) {
				problems = append(problems, fmt.Sprintf("package %q imports %q, which its row in docs/design.md does not allow; add it to the row (and say why if it goes against the direction) or remove the import", pkg, d))
			}
		}
		for _, d := range ok {
			if !slices.Contains(deps, d) {
				problems = append(problems, fmt.Sprintf("package %q: its row lists %q but it no longer imports it; remove it from the row", pkg, d))
			}
		}
	}
	for pkg := range allowed {
		if _, ok := imports[pkg]; !ok {
			problems = append(problems, fmt.Sprintf("package %q: in the package map of docs/design.md, but go list has no such package; remove its row", pkg))
		}
	}
	slices.Sort(problems)
	return problems
}
