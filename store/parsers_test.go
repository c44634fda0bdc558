package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/parsers"
)

func TestParserVersions(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ctx := context.Background()
		p := &parsers.Parser{Name: "cloud", Description: "v1", Source: "package p // 1"}
		if err := db.CreateParser(ctx, p); err != nil {
			t.Fatal(err)
		}
		if p.ID == 0 || p.Version != 1 || p.CreatedAt.IsZero() {
			t.Fatalf("created %+v", p)
		}
		wantCode(t, db.CreateParser(ctx, &parsers.Parser{Name: "cloud", Source: "x"}), soarkafka.ECONFLICT)

		for i, src := range []string{"package p // 2", "package p // 3"} {
			u := &parsers.Parser{Name: "cloud", Description: "later", Source: src}
			if err := db.UpdateParser(ctx, u); err != nil {
				t.Fatal(err)
			}
			if u.Version != int64(i+2) || u.Source != src || u.Description != "later" || u.ID != p.ID || !u.CreatedAt.Equal(p.CreatedAt) {
				t.Fatalf("update %d: %+v", i, u)
			}
		}
		got, err := db.Parser(ctx, "cloud")
		if err != nil || got.Version != 3 || got.Source != "package p // 3" {
			t.Fatalf("current: %+v %v", got, err)
		}
		vs, err := db.ParserVersions(ctx, "cloud")
		if err != nil || len(vs) != 3 || vs[0].Source != "package p // 1" || vs[2].Version != 3 {
			t.Fatalf("versions: %v %v", vs, err)
		}
		v1, err := db.ParserVersion(ctx, "cloud", 1)
		if err != nil || v1.Source != "package p // 1" {
			t.Fatalf("version 1: %+v %v", v1, err)
		}
		_, err = db.ParserVersion(ctx, "cloud", 9)
		wantCode(t, err, soarkafka.ENOTFOUND)
		if !strings.Contains(err.Error(), "has no version 9") {
			t.Fatal(err)
		}
		for _, f := range []func() error{
			func() error { _, err := db.Parser(ctx, "nope"); return err },
			func() error { _, err := db.ParserVersions(ctx, "nope"); return err },
			func() error { _, err := db.ParserVersion(ctx, "nope", 1); return err },
			func() error { return db.UpdateParser(ctx, &parsers.Parser{Name: "nope", Source: "x"}) },
			func() error { return db.DeleteParser(ctx, "nope") },
		} {
			wantCode(t, f(), soarkafka.ENOTFOUND)
		}

		if err := db.CreateParser(ctx, &parsers.Parser{Name: "aaa", Source: "package a"}); err != nil {
			t.Fatal(err)
		}
		list, err := db.Parsers(ctx)
		if err != nil || len(list) != 2 || list[0].Name != "aaa" || list[1].Version != 3 {
			t.Fatalf("list: %v %v", list, err)
		}
	})
}

// A parser an asset uses cannot be deleted; the error names the assets.
func TestDeleteParserInUse(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ctx := context.Background()
		if err := db.CreateParser(ctx, &parsers.Parser{Name: "cloud", Source: "package p"}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"b-asset", "a-asset"} {
			if err := db.CreateAsset(ctx, &assets.Asset{Name: name, Config: map[string]any{"message_parser": "cloud"}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.CreateAsset(ctx, &assets.Asset{Name: "other", Config: map[string]any{"message_parser": "cloud2"}}); err != nil {
			t.Fatal(err)
		}
		err := db.DeleteParser(ctx, "cloud")
		wantCode(t, err, soarkafka.ECONFLICT)
		if !strings.Contains(err.Error(), "used by asset a-asset, b-asset") {
			t.Fatalf("message %q", err)
		}
		for _, name := range []string{"a-asset", "b-asset"} {
			if err := db.DeleteAsset(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.DeleteParser(ctx, "cloud"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Parser(ctx, "cloud"); soarkafka.ErrorCode(err) != soarkafka.ENOTFOUND {
			t.Fatalf("after delete: %v", err)
		}
		// The versions went with it: a new parser of that name starts at 1.
		p := &parsers.Parser{Name: "cloud", Source: "package again"}
		if err := db.CreateParser(ctx, p); err != nil || p.Version != 1 {
			t.Fatalf("recreate: %+v %v", p, err)
		}
	})
}

// Concurrent updates get distinct versions, none lost.
func TestParserConcurrentUpdates(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ctx := context.Background()
		if err := db.CreateParser(ctx, &parsers.Parser{Name: "p", Source: "v1"}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for range 10 {
			wg.Go(func() {
				errs <- db.UpdateParser(ctx, &parsers.Parser{Name: "p", Source: "update"})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		vs, err := db.ParserVersions(ctx, "p")
		if err != nil || len(vs) != 11 || vs[10].Version != 11 {
			t.Fatalf("%d versions, %v", len(vs), err)
		}
	})
}
