package assets_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/store"
)

// newStore returns a migrated SQLite store of the test's own.
func newStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), testenv.SQLiteURL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db
}

// newService returns a service on a store of its own, with opts.
func newService(t *testing.T, opts ...assets.ServiceOption) *assets.Service {
	t.Helper()
	return newServiceOn(t, newStore(t), opts...)
}

func newServiceOn(t *testing.T, db *store.DB, opts ...assets.ServiceOption) *assets.Service {
	t.Helper()
	key, err := assets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := assets.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return assets.NewService(db, sealer, opts...)
}

// Every stored create, update and delete is announced once, with the
// asset's name and whether it is gone; a write that fails is not.
func TestServiceAnnouncesEachStoredChange(t *testing.T) {
	svc := newService(t)
	var got []assets.Change
	svc.Subscribe(func(ctx context.Context, c assets.Change) {
		if ctx.Err() != nil {
			t.Errorf("%+v announced with a context already done: %v", c, ctx.Err())
		}
		got = append(got, c)
	})
	want := func(step string, changes ...assets.Change) {
		t.Helper()
		if !reflect.DeepEqual(got, changes) {
			t.Fatalf("%s: announced %+v, want %+v", step, got, changes)
		}
		got = nil
	}
	doc := func(topic string) map[string]any { return map[string]any{"hosts": "b:9092", "topic": topic} }
	ctx := t.Context()

	if _, err := svc.Create(ctx, assets.Input{Name: "a", Config: doc("t1")}); err != nil {
		t.Fatal(err)
	}
	want("create", assets.Change{Name: "a"})
	if _, err := svc.Create(ctx, assets.Input{Name: "a", Config: doc("t1")}); err == nil {
		t.Fatal("a second create of a was accepted")
	}
	if _, err := svc.Create(ctx, assets.Input{Name: "b", Config: doc("..")}); err == nil {
		t.Fatal("an invalid topic was accepted")
	}
	want("failed creates")

	if _, err := svc.Update(ctx, "a", assets.Input{Config: doc("t2")}); err != nil {
		t.Fatal(err)
	}
	want("update", assets.Change{Name: "a"})
	if _, err := svc.Update(ctx, "nope", assets.Input{Config: doc("t2")}); err == nil {
		t.Fatal("an update of a missing asset was accepted")
	}
	if _, err := svc.Update(ctx, "a", assets.Input{Config: doc("")}); err == nil {
		t.Fatal("an update without a topic was accepted")
	}
	want("failed updates")

	if err := svc.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	want("delete", assets.Change{Name: "a", Deleted: true})
	if err := svc.Delete(ctx, "a"); err == nil {
		t.Fatal("a second delete of a was accepted")
	}
	want("failed delete")

	// The write's side effects follow it even when its caller goes away
	// meanwhile: a later subscriber's context is not done.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	svc.Subscribe(func(context.Context, assets.Change) { cancel() })
	svc.Subscribe(func(ctx context.Context, c assets.Change) {
		if ctx.Err() != nil {
			t.Errorf("%+v: the subscriber after the caller went away got a done context", c)
		}
	})
	if _, err := svc.Create(cctx, assets.Input{Name: "c", Config: doc("t")}); err != nil {
		t.Fatal(err)
	}
	if cctx.Err() == nil {
		t.Fatal("the caller's context was not cancelled by the subscriber")
	}
	want("create", assets.Change{Name: "c"})
}

// A subscriber that panics stops itself only: the write is stored and
// answered, the other subscribers hear of it, and the panic is logged
// with the asset's name.
func TestServiceContainsASubscribersPanic(t *testing.T) {
	logs := &testenv.LogBuffer{}
	svc := newService(t, assets.WithLogger(logs.Logger()))
	var before, after []assets.Change
	svc.Subscribe(func(_ context.Context, c assets.Change) { before = append(before, c) })
	svc.Subscribe(func(context.Context, assets.Change) { panic("subscriber bug") })
	svc.Subscribe(func(_ context.Context, c assets.Change) { after = append(after, c) })

	if _, err := svc.Create(t.Context(), assets.Input{Name: "a", Config: map[string]any{"hosts": "b:9092", "topic": "t"}}); err != nil {
		t.Fatalf("create with a panicking subscriber: %v", err)
	}
	if err := svc.Delete(t.Context(), "a"); err != nil {
		t.Fatalf("delete with a panicking subscriber: %v", err)
	}
	want := []assets.Change{{Name: "a"}, {Name: "a", Deleted: true}}
	if !reflect.DeepEqual(before, want) || !reflect.DeepEqual(after, want) {
		t.Fatalf("subscribers heard %+v and %+v, want %+v each", before, after, want)
	}
	if _, err := svc.Get(t.Context(), "a"); err == nil {
		t.Fatal("the delete was not stored")
	}
	log := logs.String()
	if strings.Count(log, "subscriber bug") != 2 || !strings.Contains(log, `"in":"asset change subscriber"`) || !strings.Contains(log, `"asset":"a"`) {
		t.Fatalf("the panics were not logged with the asset:\n%s", log)
	}
}

// With the parsers given, a save names only a parser that exists, bundled
// or stored: another name is refused on message_parser, and not announced.
func TestServiceChecksMessageParser(t *testing.T) {
	db := newStore(t)
	svc := newServiceOn(t, db, assets.WithParsers(parsers.NewService(db, nil)))
	var got []assets.Change
	svc.Subscribe(func(_ context.Context, c assets.Change) { got = append(got, c) })
	doc := func(parser string) map[string]any {
		return map[string]any{"hosts": "b:9092", "topic": "t", "message_parser": parser}
	}
	refused := func(step string, err error) {
		t.Helper()
		var e *soarkafka.Error
		if !errors.As(err, &e) || e.Code != soarkafka.EINVALID || len(e.Fields) != 1 || e.Fields[0].Field != "message_parser" ||
			!strings.Contains(e.Fields[0].Message, `no parser named "nope"`) {
			t.Fatalf("%s: %v, want message_parser refused", step, err)
		}
	}
	_, err := svc.Create(t.Context(), assets.Input{Name: "a", Config: doc("nope")})
	refused("create", err)
	if _, err := svc.Create(t.Context(), assets.Input{Name: "a", Config: doc("ndjson")}); err != nil {
		t.Fatalf("create with a bundled parser: %v", err)
	}
	_, err = svc.Update(t.Context(), "a", assets.Input{Config: doc("nope")})
	refused("update", err)
	if want := []assets.Change{{Name: "a"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("announced %+v, want %+v", got, want)
	}
}
