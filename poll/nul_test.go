package poll_test

import (
	"encoding/json"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/poll"
)

// TestPollMessageWithNUL: a message with a NUL byte, through the default
// parser, is stored (the NUL as U+FFFD) and the poll goes on past it. On
// PostgreSQL it failed the batch at every poll, and the asset's ingest
// stopped on that message.
func TestPollMessageWithNUL(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		testenv.ProduceKafka(t, e.kafka, []*kgo.Record{
			{Topic: topic, Partition: 0, Value: []byte("before")},
			{Topic: topic, Partition: 0, Value: []byte("bin\x00ary")},
			{Topic: topic, Partition: 0, Value: []byte("after")},
		})
		cfg := e.config(map[string]any{"read_from_beginning": true})
		res, err := e.poller.Poll(t.Context(), poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollScheduled})
		if err != nil {
			t.Fatal(err)
		}
		if res.ArtifactsCreated != 3 {
			t.Fatalf("%d artifacts, want 3: %+v", res.ArtifactsCreated, res)
		}
		rows, err := e.raw.QueryContext(t.Context(), `SELECT body FROM artifacts WHERE asset = 'prod'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var body string
			if err := rows.Scan(&body); err != nil {
				t.Fatal(err)
			}
			var a struct {
				CEF map[string]any `json:"cef"`
			}
			if err := json.Unmarshal([]byte(body), &a); err != nil {
				t.Fatal(err)
			}
			for _, v := range a.CEF {
				if v == "bin\uFFFDary" {
					n++
				}
			}
		}
		if n != 1 {
			t.Errorf("%d artifacts hold the message with U+FFFD for its NUL, want 1", n)
		}
	})
}
