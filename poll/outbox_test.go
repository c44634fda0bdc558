package poll_test

import (
	"sync"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/poll"
)

// A push asset's poll writes the outbox with its batches, each row
// carrying the batch's oldest Kafka timestamp; a pull asset's writes none.
func TestPushAssetPollWritesTheOutbox(t *testing.T) {
	var mu sync.Mutex
	var woken []string // what WithOutboxWritten was told, in order
	e := newEnv(t, testenv.SQLiteURL(t), poll.WithOutboxWritten(func(asset string) {
		mu.Lock()
		woken = append(woken, asset)
		mu.Unlock()
	}))
	wokenSoFar := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), woken...)
	}
	before := time.Now().Add(-time.Second)
	e.produce(all, 0, 3)
	pull := e.config(map[string]any{"read_from_beginning": true})
	push := e.config(map[string]any{"read_from_beginning": true, "delivery.mode": "push", "delivery.url": "https://soar.example.com",
		"delivery.token": "t", "delivery.asset_id": 1, "ingest.batch_size": 4})
	e.poll("pulled", pull, ingest.PollAction)
	res := e.poll("pushed", push, ingest.PollAction)
	if n := e.count(`SELECT count(*) FROM delivery_outbox WHERE asset = 'pulled'`); n != 0 {
		t.Fatalf("a pull asset's poll wrote %d outbox rows", n)
	}
	containers := e.count(`SELECT count(*) FROM containers WHERE asset = 'pushed'`)
	if n := e.count(`SELECT count(*) FROM delivery_outbox WHERE asset = 'pushed'`); n != containers || n == 0 || res.ArtifactsCreated != 12 {
		t.Fatalf("%d outbox rows for %d containers (%d artifacts)", n, containers, res.ArtifactsCreated)
	}
	rows, err := e.db.NextDeliveries(t.Context(), "pushed", 100)
	if err != nil {
		t.Fatal(err)
	}
	arts := 0
	for _, r := range rows {
		if r.MessageTime.Before(before) || r.MessageTime.After(time.Now()) {
			t.Errorf("row %d: message time %s, want the messages' produce time", r.ID, r.MessageTime)
		}
		arts += int(r.LastArtifactID - r.FirstArtifactID + 1)
	}
	if arts != 12 {
		t.Fatalf("the rows cover %d artifact ids, want the 12 stored", arts)
	}
	// Delivery was told of each of the push poll's batches as it
	// committed (batches of at most 4: at least 3; the default parser
	// makes a container, so an outbox row, per batch), and of nothing of
	// the pull asset.
	got := wokenSoFar()
	if len(got) < 3 || len(got) != containers {
		t.Fatalf("outbox written for %v, want pushed once per batch: %d batches (containers)", got, containers)
	}
	for _, a := range got {
		if a != "pushed" {
			t.Fatalf("outbox written for %v, want only pushed", got)
		}
	}
	// Polled again: nothing new, no new row.
	e.poll("pushed", push, ingest.PollAction)
	if n := e.count(`SELECT count(*) FROM delivery_outbox WHERE asset = 'pushed'`); n != containers {
		t.Fatalf("a poll that stored nothing wrote outbox rows: %d", n)
	}
	if again := wokenSoFar(); len(again) != len(got) {
		t.Fatalf("a poll that stored nothing woke delivery: %v", again)
	}
}
