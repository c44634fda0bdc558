package app

import (
	"fmt"
	"strings"

	"github.com/soarkafka/soarkafka/assets"
)

// readmeSections are the generated parts of the README, each between
// `<!-- NAME:begin -->` and `<!-- NAME:end -->` markers.
var readmeSections = map[string]func() string{
	"asset-fields": assets.MarkdownTable,
	"config-keys":  ConfigReference,
}

// RenderReadme returns the README text with its generated sections
// replaced by what the field registry and the configuration keys say now.
func RenderReadme(text string) (string, error) {
	for name, render := range readmeSections {
		begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
		i := strings.Index(text, begin)
		j := strings.Index(text, end)
		if i < 0 || j < i {
			return "", fmt.Errorf("README: markers %s ... %s missing", begin, end)
		}
		text = text[:i+len(begin)] + "\n" + render() + text[j:]
	}
	return text, nil
}
