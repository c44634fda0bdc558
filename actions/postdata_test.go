package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/kafka"
)

// pdWait bounds every wait of these tests on a live cluster.
const pdWait = 15 * time.Second

// pdRunner returns a runner closed when the test ends. Create it after the
// cluster, so that it is closed first.
func pdRunner(t *testing.T, opts ...RunnerOption) *Runner {
	t.Helper()
	logs := &testenv.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := NewRunner(logger, append([]RunnerOption{WithStepTimeout(5 * time.Second), WithAccess(tempAccess(nil, nil))}, opts...)...)
	t.Cleanup(r.Close)
	return r
}

// pdTarget returns the asset name with a configuration pointing at the
// cluster, with the producer settings given.
func pdTarget(t *testing.T, c *kfake.Cluster, asset string, producer map[string]any) Target {
	t.Helper()
	return Target{Asset: asset, Config: testenv.KafkaAssetConfig(t, c, producer)}
}

// pdPost runs post data through Runner.Run and checks what every result
// must hold: it encodes, and its two summaries agree.
func pdPost(t *testing.T, r *Runner, target Target, params map[string]any) *Result {
	t.Helper()
	return pdPostCtx(context.Background(), t, r, target, params)
}

func pdPostCtx(ctx context.Context, t *testing.T, r *Runner, target Target, params map[string]any) *Result {
	t.Helper()
	res, err := runParams(ctx, t, r, PostData, target, params)
	if err != nil {
		t.Fatalf("Run(post_data, %v): %v", trimParams(params), err)
	}
	if res.Identifier != PostData {
		t.Errorf("identifier = %q, want %q", res.Identifier, PostData)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Errorf("result does not encode: %v", err)
	}
	if res.Status != StatusSuccess && res.Status != StatusFailed {
		t.Errorf("status = %q", res.Status)
	}
	if sum, ok := res.Summary.(*PostDataSummary); ok {
		if sum.TotalObjects != res.ResultSummary.TotalObjects || sum.TotalObjectsSuccessful != res.ResultSummary.TotalObjectsSuccessful {
			t.Errorf("summary %v disagrees with result_summary %+v", res.Summary, res.ResultSummary)
		}
	}
	return res
}

func trimParams(params map[string]any) map[string]any {
	out := maps.Clone(params)
	if s, ok := out["data"].(string); ok && len(s) > 80 {
		out["data"] = s[:80] + "..."
	}
	return out
}

func wantStatus(t *testing.T, res *Result, status string, msgParts ...string) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status = %q (message %q), want %q", res.Status, res.Message, status)
	}
	for _, p := range msgParts {
		if !strings.Contains(res.Message, p) {
			t.Errorf("message = %q, want it to contain %q", res.Message, p)
		}
	}
}

func wantSummary(t *testing.T, res *Result, total, ok int) {
	t.Helper()
	want := ResultSummary{TotalObjects: total, TotalObjectsSuccessful: ok}
	if res.ResultSummary != want {
		t.Errorf("result_summary = %+v, want %+v", res.ResultSummary, want)
	}
	if sum, _ := res.Summary.(*PostDataSummary); sum == nil || sum.TotalObjects != total || sum.TotalObjectsSuccessful != ok {
		t.Errorf("summary = %v, want total_objects %d, total_objects_successful %d", res.Summary, total, ok)
	}
}

// readTopic reads every record of topic with a consumer of its own, in
// partition then offset order: the end offsets say how many there are.
func readTopic(t *testing.T, c *kfake.Cluster, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pdWait)
	defer cancel()
	adm := kadm.NewClient(testenv.KafkaClient(t, c))
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	ends, err2 := adm.ListEndOffsets(ctx, topic)
	if err2 == nil {
		err2 = ends.Error()
	}
	if err := errors.Join(err, err2); err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	starts.Each(func(o kadm.ListedOffset) { total -= o.Offset })
	if total == 0 {
		return nil
	}
	cl := testenv.KafkaClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	byPart := map[int32][]*kgo.Record{}
	var n int64
	for n < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d of %d records before %v", topic, n, total, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { byPart[r.Partition] = append(byPart[r.Partition], r); n++ })
	}
	var out []*kgo.Record
	for p := int32(0); len(byPart) > 0; p++ {
		recs := byPart[p]
		delete(byPart, p)
		for i, r := range recs {
			if i > 0 && r.Offset <= recs[i-1].Offset {
				t.Fatalf("partition %d: offset %d after %d", p, r.Offset, recs[i-1].Offset)
			}
		}
		out = append(out, recs...)
	}
	return out
}

func values(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

func wantValues(t *testing.T, recs []*kgo.Record, want ...string) {
	t.Helper()
	got := values(recs)
	if len(got) != len(want) {
		t.Fatalf("topic holds %d records %q, want %d %q", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// castagnoli is CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) computed
// bit by bit, independently of the code under test.
func castagnoli(b []byte) uint32 {
	crc := ^uint32(0)
	for _, c := range b {
		crc ^= uint32(c)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ 0x82F63B78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

// resultData is the result's data as a SOAR platform reads it: through
// JSON.
func resultData(t *testing.T, res *Result) []map[string]any {
	t.Helper()
	b, err := json.Marshal(res.Data)
	if err != nil {
		t.Fatalf("encode data: %v", err)
	}
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode data: %v", err)
	}
	return out
}

// ---- parameters ----

func TestParsePostDataParams(t *testing.T) {
	t.Parallel()
	base := map[string]any{"data_type": "JSON", "data": `{"a": 1}`, "topic": "alerts"}
	with := func(kv ...any) map[string]any {
		p := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(p, kv[i].(string))
			} else {
				p[kv[i].(string)] = kv[i+1]
			}
		}
		return p
	}
	ts := time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC)
	cases := []struct {
		name   string
		params map[string]any
		fields []string // bad fields, in order; nil: valid
		msg    string   // in the first field's message
		check  func(t *testing.T, p PostDataParams)
	}{
		{name: "defaults", params: base, check: func(t *testing.T, p PostDataParams) {
			if p.DataType != "json" || string(p.Data.Bytes()) != `{"a": 1}` || p.Topic != "alerts" || p.Timeout != 0 ||
				p.JSONFormat != "pretty" || p.Key != nil || p.Headers != nil || p.Partition != -1 || !p.Timestamp.IsZero() {
				t.Errorf("params = %+v", p)
			}
		}},
		{name: "data_type string", params: with("data_type", "string"), check: func(t *testing.T, p PostDataParams) {
			if p.DataType != "string" {
				t.Errorf("data type = %q", p.DataType)
			}
		}},
		{name: "data_type json", params: with("data_type", "json"), check: wantDataType("json")},
		{name: "data_type Json", params: with("data_type", "Json"), check: wantDataType("json")},
		{name: "data_type STRING padded", params: with("data_type", " STRING "), check: wantDataType("string")},
		{name: "data_type xml", params: with("data_type", "xml"), fields: []string{"data_type"}, msg: `"xml" is not a data type; use string or JSON`},
		{name: "data_type empty", params: with("data_type", ""), fields: []string{"data_type"}, msg: "use string or JSON"},
		{name: "data_type number", params: with("data_type", 1.0), fields: []string{"data_type"}, msg: "must be a string"},
		{name: "data_type missing", params: with("data_type", nil), fields: []string{"data_type"}, msg: "required"},
		{name: "data missing", params: with("data", nil), fields: []string{"data"}, msg: "required"},
		{name: "data structured for JSON", params: with("data", map[string]any{"s": "<b>&é"}), check: func(t *testing.T, p PostDataParams) {
			if string(p.Data.Bytes()) != `{"s":"<b>&é"}` {
				t.Errorf("data = %s, want the object as JSON, not HTML-escaped", p.Data)
			}
		}},
		{name: "data structured list for JSON", params: with("data", []any{1.0, "x"}), check: func(t *testing.T, p PostDataParams) {
			if string(p.Data.Bytes()) != `[1,"x"]` {
				t.Errorf("data = %s", p.Data)
			}
		}},
		{name: "data structured for string", params: with("data_type", "string", "data", []any{1.0}), fields: []string{"data"}, msg: "must be a string for data_type string, got an array"},
		{name: "data empty string is sent", params: with("data_type", "string", "data", ""), check: func(t *testing.T, p PostDataParams) {
			if len(p.Data.Bytes()) != 0 || p.DataType != "string" {
				t.Errorf("data = %q", p.Data)
			}
		}},
		{name: "topic missing", params: with("topic", nil), fields: []string{"topic"}, msg: "required"},
		{name: "topic empty", params: with("topic", ""), fields: []string{"topic"}, msg: "empty; a topic name has 1 to 249 characters"},
		{name: "topic 249 chars", params: with("topic", strings.Repeat("a", 249))},
		{name: "topic 250 chars", params: with("topic", strings.Repeat("a", 250)), fields: []string{"topic"}, msg: "250 characters long; a topic name has at most 249"},
		{name: "topic space", params: with("topic", "my topic"), fields: []string{"topic"}, msg: "characters Kafka does not allow"},
		{name: "topic slash", params: with("topic", "a/b"), fields: []string{"topic"}, msg: "characters Kafka does not allow"},
		{name: "topic non-ASCII", params: with("topic", "alertés"), fields: []string{"topic"}, msg: "characters Kafka does not allow"},
		{name: "topic dot", params: with("topic", "."), fields: []string{"topic"}, msg: `"." is not allowed`},
		{name: "topic dot dot", params: with("topic", ".."), fields: []string{"topic"}, msg: `".." is not allowed`},
		{name: "topic all allowed chars", params: with("topic", "a.B_c-9...")},
		{name: "topic number", params: with("topic", 7.0), fields: []string{"topic"}, msg: "must be a string, got a number"},
		{name: "timeout number", params: with("timeout", 2.5), check: wantTimeout(2500 * time.Millisecond)},
		{name: "timeout int", params: with("timeout", 3), check: wantTimeout(3 * time.Second)},
		{name: "timeout json.Number", params: with("timeout", json.Number("4")), check: wantTimeout(4 * time.Second)},
		{name: "timeout string number", params: with("timeout", " 30 "), check: wantTimeout(30 * time.Second)},
		{name: "timeout zero", params: with("timeout", 0.0), check: wantTimeout(0)},
		{name: "timeout empty string", params: with("timeout", ""), check: wantTimeout(0)},
		{name: "timeout max", params: with("timeout", 3600.0), check: wantTimeout(time.Hour)},
		{name: "timeout negative", params: with("timeout", -1.0), fields: []string{"timeout"}, msg: "is negative"},
		{name: "timeout negative string", params: with("timeout", "-5"), fields: []string{"timeout"}, msg: "is negative"},
		{name: "timeout over max", params: with("timeout", 3601.0), fields: []string{"timeout"}, msg: "over the maximum of 3600 seconds"},
		{name: "timeout text", params: with("timeout", "soon"), fields: []string{"timeout"}, msg: "must be a number of seconds, got a string"},
		{name: "timeout number with unit", params: with("timeout", "10 minutes"), fields: []string{"timeout"}, msg: "must be a number of seconds"},
		{name: "timeout NaN", params: with("timeout", "NaN"), fields: []string{"timeout"}, msg: "must be a number of seconds"},
		{name: "timeout Inf", params: with("timeout", "Inf"), fields: []string{"timeout"}},
		{name: "timeout hex", params: with("timeout", "0x10"), fields: []string{"timeout"}},
		{name: "timeout bool", params: with("timeout", true), fields: []string{"timeout"}, msg: "got a boolean"},
		{name: "json_format compact", params: with("json_format", "COMPACT"), check: func(t *testing.T, p PostDataParams) {
			if p.JSONFormat != "compact" {
				t.Errorf("json_format = %q", p.JSONFormat)
			}
		}},
		{name: "json_format pretty", params: with("json_format", "pretty"), check: func(t *testing.T, p PostDataParams) {
			if p.JSONFormat != "pretty" {
				t.Errorf("json_format = %q", p.JSONFormat)
			}
		}},
		{name: "json_format other", params: with("json_format", "yaml"), fields: []string{"json_format"}, msg: "yaml is not pretty or compact"},
		{name: "json_format number", params: with("json_format", 2.0), fields: []string{"json_format"}},
		{name: "key", params: with("key", "host-1"), check: func(t *testing.T, p PostDataParams) {
			if string(p.Key) != "host-1" {
				t.Errorf("key = %q", p.Key)
			}
		}},
		{name: "key number", params: with("key", 5.0), fields: []string{"key"}, msg: "must be a string, got a number"},
		{name: "key object", params: with("key", map[string]any{}), fields: []string{"key"}, msg: "got an object"},
		{name: "headers", params: with("headers", map[string]any{"source": "soar", "id": "42"}), check: func(t *testing.T, p PostDataParams) {
			want := []kgo.RecordHeader{{Key: "id", Value: []byte("42")}, {Key: "source", Value: []byte("soar")}}
			if len(p.Headers) != len(want) {
				t.Fatalf("headers = %v", p.Headers)
			}
			for i := range want {
				if p.Headers[i].Key != want[i].Key || string(p.Headers[i].Value) != string(want[i].Value) {
					t.Errorf("header %d = %v, want %v", i, p.Headers[i], want[i])
				}
			}
		}},
		{name: "headers not object", params: with("headers", "a=b"), fields: []string{"headers"}, msg: "must be an object of string values, got a string"},
		{name: "headers list", params: with("headers", []any{"a"}), fields: []string{"headers"}, msg: "got an array"},
		{name: "headers non-string value", params: with("headers", map[string]any{"n": 1.0}), fields: []string{"headers"}, msg: `header "n" must be a string, got a number`},
		{name: "partition", params: with("partition", 2.0), check: wantPartition(2)},
		{name: "partition zero", params: with("partition", 0.0), check: wantPartition(0)},
		{name: "partition string", params: with("partition", "1"), check: wantPartition(1)},
		{name: "partition negative", params: with("partition", -1.0), fields: []string{"partition"}, msg: "must be a partition number (0 or more), got -1"},
		{name: "partition fraction", params: with("partition", 1.5), fields: []string{"partition"}, msg: "got 1.5"},
		{name: "partition too big", params: with("partition", 3e9), fields: []string{"partition"}},
		{name: "partition text", params: with("partition", "first"), fields: []string{"partition"}},
		{name: "timestamp RFC 3339", params: with("timestamp", "2026-11-23T10:00:00.123Z"), check: wantTimestamp(ts)},
		{name: "timestamp RFC 3339 offset", params: with("timestamp", "2026-11-23T11:00:00.123+01:00"), check: wantTimestamp(ts)},
		{name: "timestamp epoch ms", params: with("timestamp", float64(ts.UnixMilli())), check: wantTimestamp(ts)},
		{name: "timestamp epoch ms string", params: with("timestamp", fmt.Sprint(ts.UnixMilli())), check: wantTimestamp(ts)},
		{name: "timestamp bad text", params: with("timestamp", "yesterday"), fields: []string{"timestamp"}, msg: "neither RFC 3339 (2026-11-23T10:00:00Z) nor epoch milliseconds"},
		{name: "timestamp date only", params: with("timestamp", "2026-11-23"), fields: []string{"timestamp"}},
		{name: "timestamp negative", params: with("timestamp", -5.0), fields: []string{"timestamp"}},
		{name: "timestamp fraction", params: with("timestamp", 1.5), fields: []string{"timestamp"}},
		{name: "everything wrong at once", params: map[string]any{
			"data_type": "xml", "topic": "..", "timeout": -1.0, "json_format": "yaml", "key": 1.0,
			"headers": "h", "partition": -2.0, "timestamp": "then",
		}, fields: []string{"data_type", "data", "topic", "timeout", "json_format", "key", "headers", "partition", "timestamp"}},
		{name: "nothing given", params: map[string]any{}, fields: []string{"data_type", "data", "topic"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := DecodePostData(fieldsOf(t, tc.params), nil)
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("DecodePostData(%v): %v", tc.params, err)
				}
				if tc.check != nil {
					tc.check(t, p)
				}
				return
			}
			wantFields(t, err, tc.fields, tc.msg)
		})
	}
}

func wantDataType(dt string) func(*testing.T, PostDataParams) {
	return func(t *testing.T, p PostDataParams) {
		if p.DataType != dt {
			t.Errorf("data type = %q, want %q", p.DataType, dt)
		}
	}
}

func wantTimeout(d time.Duration) func(*testing.T, PostDataParams) {
	return func(t *testing.T, p PostDataParams) {
		if p.Timeout != d {
			t.Errorf("timeout = %v, want %v", p.Timeout, d)
		}
	}
}

func wantPartition(n int32) func(*testing.T, PostDataParams) {
	return func(t *testing.T, p PostDataParams) {
		if p.Partition != n {
			t.Errorf("partition = %d, want %d", p.Partition, n)
		}
	}
}

func wantTimestamp(ts time.Time) func(*testing.T, PostDataParams) {
	return func(t *testing.T, p PostDataParams) {
		if !p.Timestamp.Equal(ts) {
			t.Errorf("timestamp = %v, want %v", p.Timestamp, ts)
		}
	}
}

// wantFields asserts err is EINVALID naming exactly fields, in order, each
// with a message, the first containing msg.
func wantFields(t *testing.T, err error, fields []string, msg string) {
	t.Helper()
	var e *soarkafka.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *soarkafka.Error", err, err)
	}
	if e.Code != soarkafka.EINVALID {
		t.Errorf("code = %q, want %q", e.Code, soarkafka.EINVALID)
	}
	var got []string
	for _, f := range e.Fields {
		got = append(got, f.Field)
		if f.Message == "" {
			t.Errorf("field %s has no message", f.Field)
		}
	}
	if strings.Join(got, ",") != strings.Join(fields, ",") {
		t.Fatalf("bad fields = %v, want %v (%v)", got, fields, e)
	}
	if msg != "" && !strings.Contains(e.Fields[0].Message, msg) {
		t.Errorf("%s: message = %q, want it to contain %q", fields[0], e.Fields[0].Message, msg)
	}
}

// Bad parameters are refused through Run before anything connects: no
// producer is built, nothing is sent.
func TestPostDataInvalidParamsThroughRun(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	r := pdRunner(t)
	target := pdTarget(t, c, "prod", nil)
	res, err := runParams(context.Background(), t, r, PostData, target, map[string]any{
		"data_type": "yaml", "data": "x", "topic": "bad topic", "timeout": "-3", "headers": map[string]any{"a": true},
	})
	if res != nil {
		t.Errorf("result = %+v, want none", res)
	}
	wantFields(t, err, []string{"data_type", "topic", "timeout", "headers"}, "yaml")
	res, err = runParams(context.Background(), t, r, PostData, target, nil)
	if res != nil {
		t.Errorf("result = %+v, want none", res)
	}
	wantFields(t, err, []string{"data_type", "data", "topic"}, "")
	if n := r.Producers().Len(); n != 0 {
		t.Errorf("producers = %d after refused parameters, want 0", n)
	}
	if recs := readTopic(t, c, "alerts"); len(recs) != 0 {
		t.Errorf("topic holds %d records", len(recs))
	}
}

// ---- JSON semantics (no broker) ----

func TestSplitJSON(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want []string // the messages; nil: an error containing err and pos
		err  string
		pos  string
	}{
		{in: `[1, "a", {"b": [2, 3]}, null, true]`, want: []string{`1`, `"a"`, `{"b": [2, 3]}`, `null`, `true`}},
		{in: `[[1,2]]`, want: []string{`[1,2]`}},
		{in: `[[]]`, want: []string{`[]`}},
		{in: `[[1], [2, 3]]`, want: []string{`[1]`, `[2, 3]`}},
		{in: `{"a": 1}`, want: []string{`{"a": 1}`}},
		{in: "\n\t {\"a\": [1]} \r\n", want: []string{`{"a": [1]}`}},
		{in: `"text"`, want: []string{`"text"`}},
		{in: `42`, want: []string{`42`}},
		{in: `null`, want: []string{`null`}},
		{in: ` [ {"x": "é"} ,{"y":"日本"} ] `, want: []string{`{"x": "é"}`, `{"y":"日本"}`}},
		{in: `[]`, err: "data is an empty JSON list, which holds no message; to send an empty list as one message, send [[]]"},
		{in: " [ \n ] ", err: "send [[]]"},
		{in: ``, err: "data is empty; give a JSON value"},
		{in: " \n\t", err: "data is empty"},
		// A parse error names the line and the column (in characters) of
		// the character at fault; the parser's own wording is not pinned.
		{in: "[\n  {\"a\": 1},\n  {\"b\": }\n]", err: "data is not valid JSON: ", pos: "line 3, column 9"},
		{in: "{\n\"é\": x}", err: "'x'", pos: "line 2, column 6"},
		{in: "{\"日本\": 1,\n \"k\" 2}", err: "'2'", pos: "line 2, column 6"},
		{in: `hello`, err: "'h'", pos: "line 1, column 1"},
		{in: "[1, 2, @]", err: "'@'", pos: "line 1, column 8"},
		{in: "\n\n   nope", err: "'o'", pos: "line 3, column 5"},
		{in: `[1,]`, err: "data is not valid JSON: ", pos: "line 1, column "},
		{in: "[1, 2", err: "data is not valid JSON: the JSON ends early", pos: "line 1, column 5"},
		{in: "{\"a\":\n", err: "the JSON ends early", pos: "line 2"},
		{in: "1 2", err: "data is not valid JSON: more data after the first value", pos: "line 1, column 3 (send several messages as one JSON list)"},
		{in: "{\"a\":1}\n{\"b\":2}", err: "more data after the first value", pos: "line 2, column 1"},
		{in: `{"é":1}  x`, err: "more data after the first value", pos: "line 1, column 10"},
		{in: `[1] ]`, err: "more data after the first value", pos: "line 1, column 5"},
	}
	for _, tc := range cases {
		msgs, err := SplitJSON([]byte(tc.in))
		if tc.want == nil {
			if err == nil || !strings.Contains(err.Error(), tc.err) || tc.pos != "" && !strings.Contains(err.Error(), " at "+tc.pos) {
				t.Errorf("SplitJSON(%q) = %q, %v; want error containing %q and %q", tc.in, msgs, err, tc.err, "at "+tc.pos)
			}
			continue
		}
		if err != nil {
			t.Errorf("SplitJSON(%q): %v", tc.in, err)
			continue
		}
		got := make([]string, len(msgs))
		for i, m := range msgs {
			got[i] = string(m)
		}
		if strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") {
			t.Errorf("SplitJSON(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFormatJSON(t *testing.T) {
	t.Parallel()
	in := `{"z": 1, "a": [1, 2.50, {"n": null}], "s": "é 日本 <b>&amp;</b> \"q\" \u00e9", "e": {}, "l": []}`
	pretty := `{
    "z": 1,
    "a": [
        1,
        2.50,
        {
            "n": null
        }
    ],
    "s": "é 日本 <b>&amp;</b> \"q\" \u00e9",
    "e": {},
    "l": []
}`
	compact := `{"z":1,"a":[1,2.50,{"n":null}],"s":"é 日本 <b>&amp;</b> \"q\" \u00e9","e":{},"l":[]}`
	if got := string(FormatJSON(json.RawMessage(in), "pretty")); got != pretty {
		t.Errorf("pretty =\n%s\nwant\n%s", got, pretty)
	}
	if got := string(FormatJSON(json.RawMessage(in), "compact")); got != compact {
		t.Errorf("compact = %s\nwant      %s", got, compact)
	}
	// The Splunk app's layout of a list sent as one message (Python's
	// json.dumps(indent=4)).
	if got := string(FormatJSON(json.RawMessage(`[1,2]`), "pretty")); got != "[\n    1,\n    2\n]" {
		t.Errorf("pretty [1,2] = %q", got)
	}
	for _, s := range []string{`"x"`, `42`, `null`, `[]`, `{}`} {
		if got := string(FormatJSON(json.RawMessage(s), "pretty")); got != s {
			t.Errorf("pretty %s = %s", s, got)
		}
	}
}

// ---- producing, read back with a separate consumer ----

func TestPostDataJSON(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "list", "nested", "pretty", "compact", "string", "badjson", "scalar", "structured"))
	r := pdRunner(t)
	target := pdTarget(t, c, "prod", nil)

	t.Run("list sends one message per element in order", func(t *testing.T) {
		t.Parallel()
		var elems []string
		var want []string
		for i := range 25 {
			elems = append(elems, fmt.Sprintf(`{"n":%d}`, i))
			want = append(want, fmt.Sprintf("{\n    \"n\": %d\n}", i))
		}
		res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": "[" + strings.Join(elems, ",") + "]", "topic": "list"})
		wantStatus(t, res, StatusSuccess, "25 messages", "list")
		wantSummary(t, res, 25, 25)
		wantValues(t, readTopic(t, c, "list"), want...)
	})
	t.Run("nested list is one message", func(t *testing.T) {
		t.Parallel()
		res := pdPost(t, r, target, map[string]any{"data_type": "json", "data": `[[1,2]]`, "topic": "nested"})
		wantStatus(t, res, StatusSuccess)
		wantSummary(t, res, 1, 1)
		wantValues(t, readTopic(t, c, "nested"), "[\n    1,\n    2\n]")
	})
	t.Run("pretty keeps key order and text", func(t *testing.T) {
		t.Parallel()
		res := pdPost(t, r, target, map[string]any{"data_type": "Json", "data": `{"z":"é","a":"日本 <tag> & co"}`, "topic": "pretty"})
		wantStatus(t, res, StatusSuccess)
		wantValues(t, readTopic(t, c, "pretty"), "{\n    \"z\": \"é\",\n    \"a\": \"日本 <tag> & co\"\n}")
	})
	t.Run("compact", func(t *testing.T) {
		t.Parallel()
		res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": "[ {\"a\" : [1, 2] },\n \"é\" ]", "topic": "compact", "json_format": "compact"})
		wantStatus(t, res, StatusSuccess)
		wantValues(t, readTopic(t, c, "compact"), `{"a":[1,2]}`, `"é"`)
	})
	t.Run("string is sent as is", func(t *testing.T) {
		t.Parallel()
		text := "  [1, 2]\n é <&> "
		res := pdPost(t, r, target, map[string]any{"data_type": "string", "data": text, "topic": "string"})
		wantStatus(t, res, StatusSuccess, "1 message ")
		wantSummary(t, res, 1, 1)
		wantValues(t, readTopic(t, c, "string"), text)
	})
	t.Run("string that is not JSON", func(t *testing.T) {
		t.Parallel()
		res := pdPost(t, r, target, map[string]any{"data_type": "String", "data": `{"broken": `, "topic": "badjson"})
		wantStatus(t, res, StatusSuccess)
		wantValues(t, readTopic(t, c, "badjson"), `{"broken": `)
	})
	t.Run("scalar", func(t *testing.T) {
		t.Parallel()
		res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": ` "just text" `, "topic": "scalar"})
		wantStatus(t, res, StatusSuccess)
		wantValues(t, readTopic(t, c, "scalar"), `"just text"`)
	})
	t.Run("structured data from a playbook", func(t *testing.T) {
		t.Parallel()
		data := []any{map[string]any{"html": "<b>&</b>"}, []any{1.0, 2.0}}
		res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": data, "topic": "structured", "json_format": "compact"})
		wantStatus(t, res, StatusSuccess)
		wantValues(t, readTopic(t, c, "structured"), `{"html":"<b>&</b>"}`, `[1,2]`)
	})
}

// Data that cannot be sent as a whole sends nothing.
func TestPostDataBadJSONSendsNothing(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	r := pdRunner(t)
	target := pdTarget(t, c, "prod", nil)
	for _, tc := range []struct{ data, msg string }{
		{`[]`, "send [[]]"},
		{"[\n {\"a\": 1},\n {\"a\": x}\n]", "line 3, column 8"},
		{`[{"a": 1}] {"b": 2}`, "more data after the first value at line 1, column 12"},
		{"", "data is empty"},
		{`[{"a": 1}, {"b": `, "the JSON ends early"},
	} {
		res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": tc.data, "topic": "alerts", "timeout": 5})
		wantStatus(t, res, StatusFailed, tc.msg)
		if len(res.Data) != 0 {
			t.Errorf("%q: data = %v, want none", tc.data, res.Data)
		}
	}
	if recs := readTopic(t, c, "alerts"); len(recs) != 0 {
		t.Errorf("topic holds %q after refused data, want nothing", values(recs))
	}
}

// timeout 0 fills no per-message data, but still waits for every message.
func TestPostDataTimeoutZeroStillWrites(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	r := pdRunner(t)
	var elems, want []string
	for i := range 200 {
		elems = append(elems, fmt.Sprintf(`"m%03d"`, i))
		want = append(want, fmt.Sprintf(`"m%03d"`, i))
	}
	res := pdPost(t, r, pdTarget(t, c, "prod", nil), map[string]any{"data_type": "JSON", "data": "[" + strings.Join(elems, ",") + "]", "topic": "alerts", "timeout": 0})
	wantStatus(t, res, StatusSuccess, "Successfully sent data to Kafka (200 messages to topic alerts)")
	wantSummary(t, res, 200, 200)
	if len(res.Data) != 0 {
		t.Errorf("data has %d entries with timeout 0, want none", len(res.Data))
	}
	if b, _ := json.Marshal(res); !strings.Contains(string(b), `"data":[]`) {
		t.Errorf("result encodes as %s, want data []", b)
	}
	// Every send was awaited before the action returned: the records are
	// there now, without waiting.
	wantValues(t, readTopic(t, c, "alerts"), want...)
}

func TestPostDataTimeoutDetails(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(3, "keyed", "unkeyed", "explicit", "stamped", "range"))
	r := pdRunner(t)
	target := pdTarget(t, c, "prod", nil)

	// checkData compares each message's data with the record a consumer
	// reads back.
	checkData := func(t *testing.T, res *Result, recs []*kgo.Record, keySize int) {
		t.Helper()
		data := resultData(t, res)
		if len(data) != len(recs) {
			t.Fatalf("data has %d entries, topic %d records", len(data), len(recs))
		}
		byOffset := map[string]*kgo.Record{}
		for _, rec := range recs {
			byOffset[fmt.Sprintf("%d/%d", rec.Partition, rec.Offset)] = rec
		}
		for i, d := range data {
			rec := byOffset[fmt.Sprintf("%v/%v", d["partition"], d["offset"])]
			if rec == nil {
				t.Fatalf("data[%d] = %v names no record on the topic", i, d)
			}
			want := map[string]any{
				"index":                 float64(i),
				"status":                StatusSuccess,
				"topic":                 rec.Topic,
				"partition":             float64(rec.Partition),
				"offset":                float64(rec.Offset),
				"timestamp":             float64(rec.Timestamp.UnixMilli()),
				"topic_partition":       fmt.Sprintf("%s-%d", rec.Topic, rec.Partition),
				"serialized_key_size":   float64(keySize),
				"serialized_value_size": float64(len(rec.Value)),
				"checksum":              float64(castagnoli(rec.Value)),
			}
			for k, v := range want {
				if d[k] != v {
					t.Errorf("data[%d].%s = %v (%T), want %v", i, k, d[k], d[k], v)
				}
			}
			if _, ok := d["error"]; ok {
				t.Errorf("data[%d] has an error: %v", i, d)
			}
		}
	}

	t.Run("key and headers", func(t *testing.T) {
		t.Parallel()
		res := pdPost(t, r, target, map[string]any{
			"data_type": "JSON", "data": `[{"i":0},{"i":1},{"i":2},{"i":3}]`, "topic": "keyed", "timeout": 10,
			"key": "host-7", "headers": map[string]any{"source": "soar", "case": "12"},
		})
		wantStatus(t, res, StatusSuccess)
		wantSummary(t, res, 4, 4)
		recs := readTopic(t, c, "keyed")
		wantValues(t, recs, "{\n    \"i\": 0\n}", "{\n    \"i\": 1\n}", "{\n    \"i\": 2\n}", "{\n    \"i\": 3\n}")
		for _, rec := range recs {
			if string(rec.Key) != "host-7" || rec.Partition != recs[0].Partition {
				t.Errorf("record %d: key %q partition %d; want key host-7, all in partition %d", rec.Offset, rec.Key, rec.Partition, recs[0].Partition)
			}
			if len(rec.Headers) != 2 || rec.Headers[0].Key != "case" || string(rec.Headers[0].Value) != "12" ||
				rec.Headers[1].Key != "source" || string(rec.Headers[1].Value) != "soar" {
				t.Errorf("record %d: headers %v", rec.Offset, rec.Headers)
			}
		}
		checkData(t, res, recs, len("host-7"))
	})
	t.Run("no key", func(t *testing.T) {
		t.Parallel()
		res := pdPost(t, r, target, map[string]any{"data_type": "string", "data": "plain", "topic": "unkeyed", "timeout": "10"})
		wantStatus(t, res, StatusSuccess)
		recs := readTopic(t, c, "unkeyed")
		wantValues(t, recs, "plain")
		if recs[0].Key != nil || len(recs[0].Headers) != 0 {
			t.Errorf("record key %q headers %v, want none", recs[0].Key, recs[0].Headers)
		}
		checkData(t, res, recs, -1)
		if got := resultData(t, res)[0]["checksum"]; got != float64(castagnoli([]byte("plain"))) || castagnoli([]byte("123456789")) != 0xE3069283 {
			t.Errorf("checksum = %v", got)
		}
	})
	t.Run("explicit partition", func(t *testing.T) {
		t.Parallel()
		var elems []string
		for i := range 30 {
			elems = append(elems, fmt.Sprint(i))
		}
		res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": "[" + strings.Join(elems, ",") + "]", "topic": "explicit", "partition": 2, "timeout": 10})
		wantStatus(t, res, StatusSuccess)
		recs := readTopic(t, c, "explicit")
		wantValues(t, recs, elems...) // in order: one partition
		for _, rec := range recs {
			if rec.Partition != 2 {
				t.Errorf("record %s in partition %d, want 2", rec.Value, rec.Partition)
			}
		}
		checkData(t, res, recs, -1)
		// The partition wins over the key's.
		res = pdPost(t, r, target, map[string]any{"data_type": "string", "data": "k", "topic": "explicit", "partition": "0", "key": "host-7", "timeout": 10})
		wantStatus(t, res, StatusSuccess)
		if d := resultData(t, res)[0]; d["partition"] != 0.0 || d["topic_partition"] != "explicit-0" {
			t.Errorf("data = %v, want partition 0", d)
		}
	})
	t.Run("record timestamp", func(t *testing.T) {
		t.Parallel()
		ts := time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)
		res := pdPost(t, r, target, map[string]any{"data_type": "string", "data": "a", "topic": "stamped", "partition": 0, "timestamp": "2026-01-02T03:04:05.678Z", "timeout": 10})
		wantStatus(t, res, StatusSuccess)
		res2 := pdPost(t, r, target, map[string]any{"data_type": "string", "data": "b", "topic": "stamped", "partition": 0, "timestamp": 1700000000123.0})
		wantStatus(t, res2, StatusSuccess)
		recs := readTopic(t, c, "stamped")
		wantValues(t, recs, "a", "b")
		if !recs[0].Timestamp.Equal(ts) || recs[1].Timestamp.UnixMilli() != 1700000000123 {
			t.Errorf("timestamps %v, %v; want %v, 1700000000123 ms", recs[0].Timestamp, recs[1].Timestamp, ts)
		}
		checkData(t, res, recs[:1], -1)
	})
	t.Run("partition out of range", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": `[1, 2]`, "topic": "range", "partition": 7, "timeout": 10})
		wantStatus(t, res, StatusFailed, "2 messages failed to send", `partition 7 does not exist in topic "range"`)
		wantSummary(t, res, 2, 0)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
		data := resultData(t, res)
		if len(data) != 2 || data[0]["status"] != StatusFailed || !strings.Contains(fmt.Sprint(data[0]["error"]), "partition 7") {
			t.Errorf("data = %v, want each message failed with its error", data)
		}
		if recs := readTopic(t, c, "range"); len(recs) != 0 {
			t.Errorf("topic holds %q", values(recs))
		}
		// Without a timeout the failure is reported too.
		res = pdPost(t, r, target, map[string]any{"data_type": "string", "data": "x", "topic": "range", "partition": 3})
		wantStatus(t, res, StatusFailed, "1 message failed to send", "partition 3 does not exist")
		wantSummary(t, res, 1, 0)
		if len(res.Data) != 1 {
			t.Errorf("data = %v, want the failed message", res.Data)
		}
	})
}

func TestPostDataProducerSettings(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	r := pdRunner(t)
	settings := []map[string]any{
		{"acks": "all", "idempotent": true},
		{"acks": "all", "idempotent": false},
		{"acks": "leader", "idempotent": false},
		{"acks": "none", "idempotent": false},
		{"compression": "gzip"},
		{"compression": "snappy"},
		{"compression": "lz4"},
		{"compression": "zstd", "linger_ms": 5},
	}
	var want []string
	for i, s := range settings {
		// One asset per setting, posted in turn: the order on the topic
		// is the order of the posts.
		data := fmt.Sprintf(`[{"setting": %d, "n": 1}, {"setting": %d, "n": 2}]`, i, i)
		res := pdPost(t, r, pdTarget(t, c, fmt.Sprintf("asset-%d", i), s), map[string]any{"data_type": "JSON", "data": data, "topic": "alerts", "json_format": "compact"})
		wantStatus(t, res, StatusSuccess)
		wantSummary(t, res, 2, 2)
		want = append(want, fmt.Sprintf(`{"setting":%d,"n":1}`, i), fmt.Sprintf(`{"setting":%d,"n":2}`, i))
	}
	if n := r.Producers().Len(); n != len(settings) {
		t.Errorf("producers = %d, want one per asset (%d)", n, len(settings))
	}
	wantValues(t, readTopic(t, c, "alerts"), want...)
}

// ---- failures are never reported as success ----

func TestPostDataRecordOverAssetLimit(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	r := pdRunner(t)
	target := pdTarget(t, c, "prod", map[string]any{"max_message_bytes": 1024})

	big := strings.Repeat("x", 2000)
	res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": `["small", "` + big + `", "small"]`, "topic": "alerts", "timeout": 5})
	wantStatus(t, res, StatusFailed, "message 2 is", "over producer.max_message_bytes 1024", "nothing was sent")
	if recs := readTopic(t, c, "alerts"); len(recs) != 0 {
		t.Fatalf("topic holds %d records, want nothing: the list is refused whole", len(recs))
	}

	// The limit is the record as the producer counts it: a record of
	// exactly the limit goes, one byte more does not, and neither is
	// refused by the producer itself as MESSAGE_TOO_LARGE.
	n := 0
	for kafka.RecordSize(&kgo.Record{Value: make([]byte, n+1), Key: []byte("k")}) <= 1024 {
		n++
	}
	fits := strings.Repeat("f", n)
	res = pdPost(t, r, target, map[string]any{"data_type": "string", "data": fits, "key": "k", "topic": "alerts", "timeout": 5})
	wantStatus(t, res, StatusSuccess)
	res = pdPost(t, r, target, map[string]any{"data_type": "string", "data": fits + "f", "key": "k", "topic": "alerts", "timeout": 5})
	wantStatus(t, res, StatusFailed, "message 1 is 1025 bytes, over producer.max_message_bytes 1024")
	// Several records of the limit each go, in batches the broker takes.
	list, _ := json.Marshal([]string{fits[:n-2], fits[:n-2], fits[:n-2]})
	res = pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": string(list), "key": "k", "topic": "alerts", "json_format": "compact"})
	wantStatus(t, res, StatusSuccess)
	wantValues(t, readTopic(t, c, "alerts"), fits, `"`+fits[:n-2]+`"`, `"`+fits[:n-2]+`"`, `"`+fits[:n-2]+`"`)
}

// Deep nesting indents to a size that grows with the square of the depth:
// it is measured, and refused, before it is laid out.
func TestPostDataDeepNestingRefusedBeforeLayout(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	r := pdRunner(t)
	target := pdTarget(t, c, "prod", nil)
	deep := strings.Repeat("[", 9999) + strings.Repeat("]", 9999) // 20 KB; 400 MB indented
	start := time.Now()
	res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": "[" + deep + "]", "topic": "alerts"})
	wantStatus(t, res, StatusFailed, "message 1 is 399880010 bytes pretty-printed, over producer.max_message_bytes 1048576", "json_format compact")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	res = pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": "[" + deep + "]", "topic": "alerts", "json_format": "compact"})
	wantStatus(t, res, StatusSuccess)
	wantValues(t, readTopic(t, c, "alerts"), deep)
	if n := indentedSize(json.RawMessage(`{"a": [1, {}, []], "b": "x,y"}`)); n != len(FormatJSON(json.RawMessage(`{"a": [1, {}, []], "b": "x,y"}`), "pretty")) {
		t.Errorf("indentedSize = %d", n)
	}
}

func TestPostDataRecordOverBrokerLimit(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "1500"}))
	r := pdRunner(t)
	target := pdTarget(t, c, "prod", nil) // max_message_bytes 1 MiB
	for _, timeout := range []any{0, 5} {
		res := pdPost(t, r, target, map[string]any{"data_type": "string", "data": strings.Repeat("y", 3000), "topic": "alerts", "timeout": timeout})
		wantStatus(t, res, StatusFailed, "1 message failed to send", "message 1: the broker rejected the", "too large", "max.message.bytes")
		wantSummary(t, res, 1, 0)
		// A small one still goes.
		res = pdPost(t, r, target, map[string]any{"data_type": "string", "data": "small", "topic": "alerts", "timeout": timeout})
		wantStatus(t, res, StatusSuccess)
	}
	wantValues(t, readTopic(t, c, "alerts"), "small", "small")
}

func TestPostDataUnknownTopic(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t)
	r := pdRunner(t)
	target := pdTarget(t, c, "prod", nil)
	// Again and again: the pooled client keeps asking for the topic,
	// and later posts must not wait longer for the answer.
	for _, timeout := range []any{0, 10, 0, 10} {
		start := time.Now()
		res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": `[1, 2, 3]`, "topic": "missing", "timeout": timeout})
		wantStatus(t, res, StatusFailed, "3 messages failed to send", `topic "missing" does not exist`, "create it first")
		wantSummary(t, res, 3, 0)
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("timeout %v: took %v, want under 15s", timeout, d)
		}
	}
	adm := kadm.NewClient(testenv.KafkaClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), pdWait)
	defer cancel()
	if topics, err := adm.ListTopics(ctx); err != nil || topics.Has("missing") {
		t.Errorf("topics %v, %v: want no topic created", topics.Names(), err)
	}
}

func TestPostDataAutoCreatedTopic(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.AllowAutoTopicCreation())
	r := pdRunner(t)
	res := pdPost(t, r, pdTarget(t, c, "prod", nil), map[string]any{"data_type": "string", "data": "first", "topic": "fresh", "timeout": 10})
	wantStatus(t, res, StatusSuccess)
	wantValues(t, readTopic(t, c, "fresh"), "first")
}

func TestPostDataUnreachableBroker(t *testing.T) {
	t.Parallel()
	cfg, err := assets.Decode(map[string]any{"hosts": testenv.RefusingTCPAddr(t), "topic": "alerts"}, assets.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := pdRunner(t)
	target := Target{Asset: "down", Config: cfg}

	start := time.Now()
	res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": `[1, 2]`, "topic": "alerts", "timeout": 1})
	wantStatus(t, res, StatusFailed, "2 messages failed to send", "no acknowledgement within 1s")
	wantSummary(t, res, 2, 0)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout 1: took %v", d)
	}
	if data := resultData(t, res); len(data) != 2 || data[1]["status"] != StatusFailed || data[1]["partition"] != nil {
		t.Errorf("data = %v, want two failed messages without partition", data)
	}

	// timeout 0 waits for the producer to give up, within the runner's
	// delivery wait...
	capped := pdRunner(t, WithDeliveryWait(time.Second))
	start = time.Now()
	res = pdPost(t, capped, target, map[string]any{"data_type": "JSON", "data": `[1, 2, 3]`, "topic": "alerts"})
	wantStatus(t, res, StatusFailed, "3 messages failed to send", "no acknowledgement within 1s")
	wantSummary(t, res, 3, 0)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout 0, delivery wait 1s: took %v", d)
	}

	// ...or until the request ends.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start = time.Now()
	res = pdPostCtx(ctx, t, r, target, map[string]any{"data_type": "string", "data": "x", "topic": "alerts"})
	wantStatus(t, res, StatusFailed, "1 message failed to send", "the request ended before the broker acknowledged")
	wantSummary(t, res, 1, 0)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout 0, request deadline 1.5s: took %v", d)
	}
}

// listOf returns a JSON list of n compact messages and what the topic
// then holds for each.
func listOf(n int) (data string, want []string) {
	elems := make([]string, n)
	want = make([]string, n)
	for i := range n {
		elems[i] = fmt.Sprintf(`{"seq":%d,"pad":"%s"}`, i, strings.Repeat("p", 60))
		want[i] = elems[i]
	}
	return "[" + strings.Join(elems, ",") + "]", want
}

// The broker starts refusing a 5,000-message list partway through: the
// action fails, and its count of successful messages is exactly what the
// topic holds.
func TestPostDataBrokerRejectsMidBatch(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	r := pdRunner(t)
	// Small batches, so that the list takes many produce requests.
	target := pdTarget(t, c, "prod", map[string]any{"acks": "leader", "idempotent": false, "max_message_bytes": 2048})
	var produces atomic.Int64
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "alerts", Err: kerr.InvalidRecord, Count: -1,
		When: func(kmsg.Request) bool { return produces.Add(1) > 20 }})
	defer h.Remove()

	data, want := listOf(5000)
	var end int64 // the partition's end offset: what the rounds wrote so far
	for _, timeout := range []any{0, 10} {
		res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": data, "topic": "alerts", "timeout": timeout, "json_format": "compact"})
		recs := readTopic(t, c, "alerts")
		ok := res.ResultSummary.TotalObjectsSuccessful
		wantStatus(t, res, StatusFailed, fmt.Sprintf("%d messages failed to send", 5000-ok), "INVALID_RECORD")
		wantSummary(t, res, 5000, ok)
		if ok == 0 || ok == 5000 || len(recs) != ok {
			t.Fatalf("timeout %v: %d successful, topic holds %d: want the same count, strictly between 0 and 5000", timeout, ok, len(recs))
		}
		wantValues(t, recs, want[:ok]...)
		if timeout == 10 {
			data := resultData(t, res)
			if len(data) != 5000 || data[ok-1]["status"] != StatusSuccess || data[ok]["status"] != StatusFailed {
				t.Errorf("data: want %d successes then failures", ok)
			}
		} else if len(res.Data) != 5000-ok {
			t.Errorf("timeout 0: data has %d entries, want the %d failed messages", len(res.Data), 5000-ok)
		}
		end += int64(ok)
		testenv.DeleteKafkaRecords(t, c, "alerts", 0, end)
		produces.Store(0)
	}
}

// The broker goes silent partway through a 5,000-message list (every produce
// request after the first few has its connection closed, as when the
// broker dies): the action fails once its timeout is up, and its count of
// successful messages is exactly what the topic holds.
func TestPostDataBrokerDiesMidBatch(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	r := pdRunner(t)
	target := pdTarget(t, c, "prod", map[string]any{"max_message_bytes": 2048}) // acks all, idempotent
	var produces atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if produces.Add(1) <= 20 {
			return nil, nil, false
		}
		c.KeepControl()
		return nil, errors.New("broker gone"), true
	})

	data, want := listOf(5000)
	start := time.Now()
	res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": data, "topic": "alerts", "timeout": 2, "json_format": "compact"})
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("took %v with timeout 2", d)
	}
	ok := res.ResultSummary.TotalObjectsSuccessful
	wantStatus(t, res, StatusFailed, fmt.Sprintf("%d messages failed to send", 5000-ok), "no acknowledgement within 2s")
	wantSummary(t, res, 5000, ok)
	recs := readTopic(t, c, "alerts")
	if ok == 0 || ok == 5000 || len(recs) != ok {
		t.Fatalf("%d successful, topic holds %d: want the same count, strictly between 0 and 5000", ok, len(recs))
	}
	wantValues(t, recs, want[:ok]...)
}

// The cluster is closed while a 5,000-message list is being sent.
func TestPostDataClusterClosedMidBatch(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	r := pdRunner(t)
	target := pdTarget(t, c, "prod", map[string]any{"acks": "leader", "idempotent": false, "max_message_bytes": 2048})
	var produces atomic.Int64
	closing := make(chan struct{})
	var once sync.Once
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if produces.Add(1) == 20 {
			once.Do(func() { close(closing) })
		}
		c.KeepControl()
		return nil, nil, false
	})
	go func() {
		<-closing
		c.Close()
	}()
	data, _ := listOf(5000)
	start := time.Now()
	res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": data, "topic": "alerts", "timeout": 2})
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("took %v with timeout 2", d)
	}
	ok := res.ResultSummary.TotalObjectsSuccessful
	wantStatus(t, res, StatusFailed, fmt.Sprintf("%d messages failed to send", 5000-ok))
	wantSummary(t, res, 5000, ok)
	if ok >= 5000 || ok < 1 {
		t.Errorf("%d successful, want some but not all", ok)
	}
}

// ---- the producer is kept per asset ----

// apiVersionsCounter counts the ApiVersions requests the cluster answers:
// one per new connection.
func apiVersionsCounter(c *kfake.Cluster) *atomic.Int64 {
	var n atomic.Int64
	c.ControlKey(int16(kmsg.ApiVersions), func(kmsg.Request) (kmsg.Response, error, bool) {
		n.Add(1)
		return nil, nil, false
	})
	return &n
}

// clientClosed reports whether a kgo client has been closed.
func clientClosed(cl *kgo.Client) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "probe", Value: []byte("x")}).FirstErr()
	return errors.Is(err, kgo.ErrClientClosed)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pdWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after %v", what, pdWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pooled returns the client the runner holds for target, without keeping
// it in use.
func pooled(t *testing.T, r *Runner, target Target) *kgo.Client {
	t.Helper()
	n := r.Producers().Len()
	cl, release, err := r.Producers().Acquire(context.Background(), target.Asset, target.Config)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if r.Producers().Len() != n {
		t.Fatalf("looking at the pooled client built a new one")
	}
	return cl
}

func TestPostDataReusesProducer(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	r := pdRunner(t)
	conns := apiVersionsCounter(c)
	target := pdTarget(t, c, "prod", nil)
	params := map[string]any{"data_type": "string", "data": "one", "topic": "alerts", "timeout": 5}

	wantStatus(t, pdPost(t, r, target, params), StatusSuccess)
	first := conns.Load()
	if first == 0 {
		t.Fatal("no ApiVersions seen: the counter does not work")
	}
	cl := pooled(t, r, target)
	for range 3 {
		wantStatus(t, pdPost(t, r, target, params), StatusSuccess)
	}
	if n := conns.Load(); n != first {
		t.Errorf("ApiVersions %d after more posts, %d after the first: a post set up a connection", n, first)
	}
	if n := r.Producers().Len(); n != 1 {
		t.Errorf("producers = %d, want 1", n)
	}
	if pooled(t, r, target) != cl {
		t.Error("the pooled client changed between posts")
	}

	// A changed configuration gets a new client; the old one is closed.
	changed := pdTarget(t, c, "prod", map[string]any{"linger_ms": 2})
	wantStatus(t, pdPost(t, r, changed, params), StatusSuccess)
	if n := r.Producers().Len(); n != 1 {
		t.Errorf("producers = %d after the asset changed, want 1", n)
	}
	if pooled(t, r, changed) == cl {
		t.Error("the asset changed and kept its client")
	}
	eventually(t, "closed, the replaced client", func() bool { return clientClosed(cl) })
	if conns.Load() == first {
		t.Error("the new client set up no connection")
	}

	// Forget closes it.
	cl = pooled(t, r, changed)
	r.Forget("prod")
	if n := r.Producers().Len(); n != 0 {
		t.Errorf("producers = %d after Forget, want 0", n)
	}
	eventually(t, "closed, the forgotten client", func() bool { return clientClosed(cl) })
	r.Forget("prod") // twice, and unknown: no-op
	r.Forget("unknown")

	wantValues(t, readTopic(t, c, "alerts"), "one", "one", "one", "one", "one")
}

func TestPostDataIdleProducerClosed(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	r := pdRunner(t, WithProducerIdleTimeout(100*time.Millisecond))
	target := pdTarget(t, c, "prod", nil)
	wantStatus(t, pdPost(t, r, target, map[string]any{"data_type": "string", "data": "a", "topic": "alerts"}), StatusSuccess)
	cl := pooled(t, r, target)
	eventually(t, "dropped, the idle client", func() bool { return r.Producers().Len() == 0 })
	eventually(t, "closed, the idle client", func() bool { return clientClosed(cl) })
	// The next post builds a new one.
	wantStatus(t, pdPost(t, r, target, map[string]any{"data_type": "string", "data": "b", "topic": "alerts"}), StatusSuccess)
	wantValues(t, readTopic(t, c, "alerts"), "a", "b")
}

func TestPostDataConcurrent(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	r := pdRunner(t)
	conns := apiVersionsCounter(c)
	target := pdTarget(t, c, "prod", nil)
	const goroutines, posts = 8, 6
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for p := range posts {
				data := fmt.Sprintf(`[{"g":%d,"i":%d},{"g":%d,"i":%d}]`, g, 2*p, g, 2*p+1)
				params := map[string]any{"data_type": "JSON", "data": data, "topic": "alerts", "json_format": "compact"}
				if p%2 == 1 {
					params["timeout"] = 10
				}
				res, err := runParams(context.Background(), t, r, PostData, target, params)
				if err != nil || res.Status != StatusSuccess || res.ResultSummary.TotalObjectsSuccessful != 2 {
					t.Errorf("goroutine %d post %d: %+v, %v", g, p, res, err)
				}
			}
		})
	}
	wg.Wait()
	if n := r.Producers().Len(); n != 1 {
		t.Errorf("producers = %d, want 1", n)
	}
	recs := readTopic(t, c, "alerts")
	if len(recs) != goroutines*posts*2 {
		t.Fatalf("topic holds %d records, want %d", len(recs), goroutines*posts*2)
	}
	// Each goroutine's messages are in its order within the partition.
	next := map[int]int{}
	for _, rec := range recs {
		var m struct{ G, I int }
		if err := json.Unmarshal(rec.Value, &m); err != nil {
			t.Fatalf("record %q: %v", rec.Value, err)
		}
		if m.I != next[m.G] {
			t.Errorf("goroutine %d: message %d where %d was due", m.G, m.I, next[m.G])
		}
		next[m.G] = m.I + 1
	}
	// One producer's connections, not one set per post (a consumer above
	// made some too).
	if n := conns.Load(); n > 10 {
		t.Errorf("%d connections set up for %d posts", n, goroutines*posts)
	}
}

// A broker that takes produce requests and never answers them, with a list
// larger than the producer's buffer: the action still returns when its wait
// is up. Records the producer never took are reported as not sent, the
// others as unacknowledged (they may still be written), none as sent.
func TestPostDataHungBrokerBoundedWait(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	t.Cleanup(func() { close(release) })
	r := pdRunner(t, WithDeliveryWait(2*time.Second))
	target := pdTarget(t, c, "hung", nil)

	elems := make([]string, 25000)
	for i := range elems {
		elems[i] = fmt.Sprintf(`{"n":%d}`, i)
	}
	start := time.Now()
	res := pdPost(t, r, target, map[string]any{"data_type": "JSON", "data": "[" + strings.Join(elems, ",") + "]", "topic": "alerts", "json_format": "compact"})
	// 2s of wait plus the work on 25,000 messages: about 5s alone under
	// -race, nearly 10s beside the other packages' tests on 2 cores. Without
	// the wait the action would last the producer's own 30s request
	// timeout, or for ever on this broker: 20s tells the two apart.
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("the action took %s with a 2s delivery wait", took)
	}
	wantStatus(t, res, StatusFailed, "25000 messages failed to send")
	wantSummary(t, res, 25000, 0)
	notSent, unacked := 0, 0
	for _, d := range resultData(t, res) {
		switch msg := d["error"].(string); {
		case strings.HasPrefix(msg, "not sent: the producer could not take it"):
			notSent++
		case strings.HasPrefix(msg, "no acknowledgement within 2s"):
			unacked++
		default:
			t.Fatalf("unexpected error %q", msg)
		}
	}
	if notSent == 0 || unacked == 0 || notSent+unacked != 25000 {
		t.Fatalf("%d not sent, %d unacknowledged: want both, 25000 in all", notSent, unacked)
	}
}

// The result echoes the parameters, but a data over 64 KiB only in part,
// cut on a character boundary; the payload itself is whole.
func TestEchoParams(t *testing.T) {
	small := fieldsOf(t, map[string]any{"data": "abc", "data_type": "string", "topic": "t"})
	p, err := DecodePostData(small, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Echo()["data"]); got != `"abc"` {
		t.Fatalf("small string: %s", got)
	}
	big := strings.Repeat("a", echoLimit-1) + "é" + strings.Repeat("b", 100) // é straddles the limit
	fields := fieldsOf(t, map[string]any{"data": big, "data_type": "string", "topic": "t"})
	given := fields[0].Value.Clone()
	p, err = DecodePostData(fields, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := json.Unmarshal(p.Echo()["data"], &got); err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("a", echoLimit-1) + fmt.Sprintf("... (%d bytes in all)", len(big))
	if got != want {
		t.Fatalf("echo is %d bytes ending %q", len(got), got[len(got)-40:])
	}
	if string(p.Data.Bytes()) != big {
		t.Fatal("the payload was cut with the echo")
	}
	if !bytes.Equal(fields[0].Value, given) || string(p.Echo()["topic"]) != `"t"` {
		t.Fatal("the caller's parameters were changed")
	}
	// Structured data is echoed as given.
	p, err = DecodePostData(fieldsOf(t, map[string]any{"data": []any{1.0, "x"}, "data_type": "json", "topic": "t"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Echo()["data"]); got != `[1,"x"]` {
		t.Fatalf("structured data echo: %s", got)
	}
}
