package poll_test

import (
	"sort"
	"testing"

	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/poll"
)

// Poll now's fetch: the first count messages by partition then offset,
// emitted in batches of ingest.batch_size, and a stop reason that says
// whether the count was reached or the topic ran out; a continuing poll's
// limit (ingest.max_messages) does not apply to it.
func TestPollNowReadsTheFirstCountInBatchesAndSaysWhyItStopped(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	e.produce(all, 0, 5)
	cfg := e.config(map[string]any{"ingest.batch_size": 3, "ingest.max_messages": 2})

	res, err := e.poller.Poll(t.Context(), poll.Request{Asset: "some", Config: cfg, Kind: ingest.PollNow, Count: 12})
	if err != nil {
		t.Fatal(err)
	}
	want := append(wantSDIs([]int32{0, 1}, 0, 5), wantSDIs([]int32{2}, 0, 2)...)
	sort.Strings(want)
	if res.MessagesRead != 12 || res.ArtifactsCreated != 12 || res.Stopped != poll.StoppedMaxMessages || !equal(e.sdis("some"), want) {
		t.Fatalf("poll now of 12 = %+v, stored %v; want %v, stopped %s", res, e.sdis("some"), want, poll.StoppedMaxMessages)
	}

	res, err = e.poller.Poll(t.Context(), poll.Request{Asset: "every", Config: cfg, Kind: ingest.PollNow, Count: 50})
	if err != nil {
		t.Fatal(err)
	}
	if res.MessagesRead != 20 || res.ArtifactsCreated != 20 || res.Stopped != poll.StoppedCaughtUp {
		t.Fatalf("poll now of 50 from 20 = %+v; want 20 read and stored, stopped %s", res, poll.StoppedCaughtUp)
	}
}
