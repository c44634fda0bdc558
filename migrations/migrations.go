// Package migrations owns the database schema: goose SQL migrations, one
// folder per dialect, embedded in the binary so the server and the
// `soarkafka migrate` command need no files beside them. The two folders hold
// the same versions with the same names; each file says the same thing in its
// dialect's types.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// FS returns the migrations of a dialect ("sqlite" or "postgres"), with the
// files at its root as goose expects.
func FS(dialect string) (fs.FS, error) {
	switch dialect {
	case "sqlite", "postgres":
		return fs.Sub(files, dialect)
	}
	return nil, fmt.Errorf("migrations: unknown dialect %q: use sqlite or postgres", dialect)
}
