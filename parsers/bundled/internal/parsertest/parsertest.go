// Package parsertest holds what the bundled parsers' tests share: test
// batches from sample files, and golden files of their results encoded as
// the sandbox encodes them. Only tests import it.
package parsertest

import (
	"bytes"
	"compress/gzip"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/soar"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// Batch makes one message per value on topic, partition 0 from offset 100,
// all at one fixed time.
func Batch(topic string, values ...[]byte) []soar.Message {
	out := make([]soar.Message, len(values))
	for i, v := range values {
		out[i] = soar.Message{Topic: topic, Partition: 0, Offset: int64(100 + i), Value: v, Message: string(v), Timestamp: time.Unix(1710400000, 0).UTC()}
	}
	return out
}

// Files reads files of the test's testdata folder.
func Files(t testing.TB, names ...string) [][]byte {
	t.Helper()
	out := make([][]byte, len(names))
	for i, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// Encode is the JSON the worker returns for results, indented for
// readable golden files.
func Encode(t testing.TB, res []soar.Result) []byte {
	t.Helper()
	b, err := jsonv2.Marshal(res, sandbox.ResultOptions(), jsontext.WithIndent("  "))
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// Golden compares got with testdata/golden/<name>.json, rewriting it first
// under -update.
func Golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: results differ from %s:\n%s", name, path, got)
	}
}

// ParseFunc is a parser's ParseMessages.
type ParseFunc func(topic string, messages []soar.Message) ([]soar.Result, error)

// GoldenCases runs parse on each case (a golden name and the testdata files
// of its batch, one message each) and compares the results with the golden
// files. The case named gzipped runs again with every value gzip-compressed
// and must give the same golden results.
func GoldenCases(t *testing.T, parse ParseFunc, topic string, cases map[string][]string, gzipped string) {
	t.Helper()
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := parse(topic, Batch(topic, Files(t, in...)...))
			if err != nil {
				t.Fatal(err)
			}
			Golden(t, name, Encode(t, res))
		})
	}
	if gzipped == "" {
		return
	}
	t.Run(gzipped+" gzipped", func(t *testing.T) {
		values := Files(t, cases[gzipped]...)
		for i := range values {
			values[i] = Gzip(values[i])
		}
		res, err := parse(topic, Batch(topic, values...))
		if err != nil {
			t.Fatal(err)
		}
		Golden(t, gzipped, Encode(t, res))
	})
}

// Benchmark runs parse on batches of n copies of value and reports bytes,
// allocations, msgs/s and, with eventsPerMessage > 0, events/s.
func Benchmark(b *testing.B, parse ParseFunc, value []byte, n, eventsPerMessage int) {
	values := make([][]byte, n)
	for i := range values {
		values[i] = value
	}
	msgs := Batch("t", values...)
	b.ReportAllocs()
	b.SetBytes(int64(len(value) * len(msgs)))
	done := 0
	for b.Loop() {
		if _, err := parse("t", msgs); err != nil {
			b.Fatal(err)
		}
		done += len(msgs)
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "msgs/s")
	if eventsPerMessage > 0 {
		b.ReportMetric(float64(eventsPerMessage*done)/b.Elapsed().Seconds(), "events/s")
	}
}
