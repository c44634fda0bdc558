package assets_test

import (
	"sync"
	"testing"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
)

// newServices returns two services on one SQLite database, as two replicas
// of the server have on one PostgreSQL.
func newServices(t *testing.T) (*assets.Service, *assets.Service) {
	t.Helper()
	db, err := store.Open(t.Context(), testenv.SQLiteURL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	key, err := assets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := assets.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return assets.NewService(db, sealer), assets.NewService(db, sealer)
}

// Resolve keeps what it decoded, but never past a change of the row: an
// update, a delete, or a new asset under the same name is seen by the very
// next call, secrets included, whichever replica made the change.
func TestResolveSeesEveryChange(t *testing.T) {
	svc, other := newServices(t)
	ctx := t.Context()
	doc := func(topic, password string) map[string]any {
		return map[string]any{"hosts": "b:9092", "topic": topic, "security_protocol": "SASL_PLAINTEXT",
			"sasl_mechanism": "PLAIN", "username": "u", "password": password}
	}
	want := func(step, topic, password string) {
		t.Helper()
		for range 2 { // the second call answers from what the first decoded
			cfg, _, err := svc.Resolve(ctx, "a")
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			if cfg.Topic != topic || cfg.Password != password {
				t.Fatalf("%s: topic %q, password %q; want %q, %q", step, cfg.Topic, cfg.Password, topic, password)
			}
		}
	}
	if _, err := svc.Create(ctx, assets.Input{Name: "a", Config: doc("t1", "p1")}); err != nil {
		t.Fatal(err)
	}
	want("created", "t1", "p1")

	if _, err := svc.Update(ctx, "a", assets.Input{Config: doc("t2", "p2")}); err != nil {
		t.Fatal(err)
	}
	want("updated", "t2", "p2")

	if err := svc.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Resolve(ctx, "a"); soarkafka.ErrorCode(err) != soarkafka.ENOTFOUND {
		t.Fatalf("deleted: %v, want ENOTFOUND", err)
	}
	// Created again: version 1 once more, but a new row.
	if _, err := svc.Create(ctx, assets.Input{Name: "a", Config: doc("t3", "p3")}); err != nil {
		t.Fatal(err)
	}
	want("created again", "t3", "p3")

	// Another replica deletes it and creates it again: version 1, as the
	// one this replica resolved, but another row.
	if err := other.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Create(ctx, assets.Input{Name: "a", Config: doc("t4", "p4")}); err != nil {
		t.Fatal(err)
	}
	want("deleted and created again elsewhere", "t4", "p4")
	if _, err := other.Update(ctx, "a", assets.Input{Config: doc("t5", "p5")}); err != nil {
		t.Fatal(err)
	}
	want("updated elsewhere", "t5", "p5")

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if cfg, _, err := svc.Resolve(ctx, "a"); err != nil || cfg.Topic != "t5" {
				t.Errorf("concurrent resolve: %q, %v", cfg.Topic, err)
			}
		})
	}
	wg.Wait()
}
