package migrations

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

// TestDialectsHaveTheSameMigrations guards against a migration written for one
// dialect only: the store runs the same code on both.
func TestDialectsHaveTheSameMigrations(t *testing.T) {
	names := map[string][]string{}
	for _, dialect := range []string{"sqlite", "postgres"} {
		fsys, err := FS(dialect)
		if err != nil {
			t.Fatal(err)
		}
		files, err := fs.Glob(fsys, "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 || files[0] != "00001_assets.sql" {
			t.Fatalf("%s migrations: %q, want 00001_assets.sql first", dialect, files)
		}
		for _, f := range files {
			b, err := fs.ReadFile(fsys, f)
			if err != nil {
				t.Fatal(err)
			}
			if s := string(b); !strings.Contains(s, "-- +goose Up") || !strings.Contains(s, "-- +goose Down") {
				t.Errorf("%s/%s: want both a goose Up and Down section", dialect, f)
			}
		}
		names[dialect] = files
	}
	if !reflect.DeepEqual(names["sqlite"], names["postgres"]) {
		t.Fatalf("sqlite migrations %q differ from postgres migrations %q", names["sqlite"], names["postgres"])
	}
}

func TestFSUnknownDialect(t *testing.T) {
	if _, err := FS("mysql"); err == nil || !strings.Contains(err.Error(), `"mysql"`) {
		t.Fatalf("FS(mysql) error = %v, want one naming the dialect", err)
	}
}
