package store_test

import (
	"encoding/json"
	"testing"

	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

// TestSaveBatchNUL: a NUL character in what a parser returns (a Kafka
// message with a NUL byte, through the default parser) is stored as U+FFFD
// on both dialects. PostgreSQL refused it (jsonb: "unsupported Unicode
// escape sequence", text: "invalid byte sequence"), which failed the batch
// as an internal error at every poll: the asset's ingest stuck on that
// message for good. Escaped text that only looks like the escape is kept.
func TestSaveBatchNUL(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		for _, valid := range []bool{true, false} {
			asset := map[bool]string{true: "vouched", false: "checked"}[valid]
			b := &ingest.Batch{Asset: asset, Topic: "t", BodiesValid: valid, Containers: []ingest.Container{{
				SourceDataIdentifier: "c\x001",
				Body:                 json.RawMessage(`{"name":"bad\u0000name","label":"events","data":{"k\u0000":"v"}}`),
				Artifacts: []ingest.Artifact{{SourceDataIdentifier: "0:\x001",
					Body: json.RawMessage(`{"cef":{"message":"a\u0000b","literal":"\\u0000"},"name":"n"}`)}},
			}}}
			if _, err := db.SaveBatch(t.Context(), b); err != nil {
				t.Fatalf("%s: %v", asset, err)
			}
			wantRows(t, raw, asset, 1, 1)
			var name, csdi, cbody, asdi, abody string
			if err := raw.QueryRowContext(t.Context(), `SELECT c.name, c.source_data_identifier, c.body, a.source_data_identifier, a.body
				FROM containers c JOIN artifacts a ON a.container_id = c.id WHERE c.asset = '`+asset+`'`).Scan(&name, &csdi, &cbody, &asdi, &abody); err != nil {
				t.Fatal(err)
			}
			if name != "bad\uFFFDname" || csdi != "c\uFFFD1" || asdi != "0:\uFFFD1" {
				t.Errorf("%s: name %q, container sdi %q, artifact sdi %q", asset, name, csdi, asdi)
			}
			var cb struct {
				Data map[string]string `json:"data"`
			}
			var ab struct {
				CEF map[string]string `json:"cef"`
			}
			if err := json.Unmarshal([]byte(cbody), &cb); err != nil || cb.Data["k\uFFFD"] != "v" {
				t.Errorf("%s: container body %s (%v)", asset, cbody, err)
			}
			if err := json.Unmarshal([]byte(abody), &ab); err != nil || ab.CEF["message"] != "a\uFFFDb" || ab.CEF["literal"] != `\u0000` {
				t.Errorf("%s: artifact body %s (%v)", asset, abody, err)
			}
		}
	})
}
