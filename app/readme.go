package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/soarkafka/soarkafka/assets"
)

// generatedDocs are the generated tables of the documentation: each lives in
// file (relative to the module root) between `<!-- name:begin -->` and
// `<!-- name:end -->` markers. Moving a table to another file means changing
// its file here; `make readme` and TestDocTablesAreGenerated follow.
var generatedDocs = []struct {
	file, name string
	render     func() string
}{
	{"docs/api.md", "asset-fields", assets.MarkdownTable},
	{"docs/api.md", "config-keys", ConfigReference},
}

// RenderDocs returns, for each documentation file under the module root
// that holds generated tables, its text with those tables replaced by what
// the field registry and the configuration keys say now. The keys are the
// files' paths relative to root, with forward slashes.
func RenderDocs(root string) (map[string]string, error) {
	out := map[string]string{}
	for _, g := range generatedDocs {
		text, ok := out[g.file]
		if !ok {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(g.file)))
			if err != nil {
				return nil, fmt.Errorf("generated table %s: %w", g.name, err)
			}
			text = string(b)
		}
		text, err := renderSection(g.file, text, g.name, g.render)
		if err != nil {
			return nil, err
		}
		out[g.file] = text
	}
	return out, nil
}

// renderSection replaces the text between one table's markers.
func renderSection(file, text, name string, render func() string) (string, error) {
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	i := strings.Index(text, begin)
	j := strings.Index(text, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("%s: markers %s ... %s missing", file, begin, end)
	}
	if strings.Count(text, begin) != 1 || strings.Count(text, end) != 1 {
		return "", fmt.Errorf("%s: markers %s ... %s appear more than once", file, begin, end)
	}
	return text[:i+len(begin)] + "\n" + render() + text[j:], nil
}
