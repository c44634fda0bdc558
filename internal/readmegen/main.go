// Command readmegen rewrites the documentation's generated tables (asset
// fields, configuration keys; docs/api.md) from the code that defines them:
// `make readme`. Which file holds which table is said once, in app.RenderDocs.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/soarkafka/soarkafka/app"
)

func main() {
	if len(os.Args) > 2 {
		fmt.Fprintln(os.Stderr, "usage: readmegen [module root, default .]")
		os.Exit(2)
	}
	root := "."
	if len(os.Args) == 2 {
		root = os.Args[1]
	}
	docs, err := app.RenderDocs(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for file, text := range docs {
		path := filepath.Join(root, filepath.FromSlash(file))
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
