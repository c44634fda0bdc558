package poll_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/poll"
)

// hugeErrorParser returns a 20 MB error on a message that says "boom": it
// used to go whole into ingest_polls.error.
const hugeErrorParser = `package parser

import (
	"errors"
	"strings"

	"github.com/soarkafka/soarkafka/soar"
)

func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {
	for _, m := range messages {
		if m.Message == "boom" {
			return nil, errors.New(strings.Repeat("x", 20<<20))
		}
	}
	return nil, nil
}
`

func TestParserErrorStoredBounded(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		if _, err := e.parsers.Create(t.Context(), parsers.Input{Name: "huge", Source: hugeErrorParser}); err != nil {
			t.Fatal(err)
		}
		testenv.ProduceKafka(t, e.kafka, []*kgo.Record{{Topic: topic, Partition: 0, Value: []byte("boom")}})
		cfg := e.config(map[string]any{"read_from_beginning": true, "message_parser": "huge"})
		_, err := e.poller.Poll(t.Context(), poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollScheduled})
		var pe *poll.PoisonError
		if !errors.As(err, &pe) {
			t.Fatalf("err %v, want a PoisonError", err)
		}
		const bound = sandbox.MaxErrorText + 1024 // the marker and what the poll says around it
		if n := len(err.Error()); n > bound {
			t.Errorf("poll error of %d bytes, over %d", n, bound)
		}
		var stored string
		q := `SELECT error FROM ingest_polls WHERE asset = 'prod'`
		if err := e.raw.QueryRowContext(t.Context(), q).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if len(stored) > bound || !strings.Contains(stored, "[cut 20905") || !strings.Contains(stored, "0:0") {
			t.Errorf("stored error of %d bytes (want under %d, naming the message and the cut): …%s", len(stored), bound, stored[max(0, len(stored)-120):])
		}
	})
}
