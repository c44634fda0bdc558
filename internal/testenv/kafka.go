// Package testenv builds the real components tests run against (an
// in-process Kafka cluster with TLS and SASL, a throwaway PKI, a PostgreSQL
// schema, an MIT Kerberos KDC, AWS STS and instance-metadata stand-ins, a
// Splunk SOAR REST stand-in), each torn down by t.Cleanup, so no test builds
// its own world by hand.
package testenv

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaHelperTimeout bounds each helper's requests to a kfake cluster.
const kafkaHelperTimeout = 10 * time.Second

// NewKafka starts an in-process Kafka cluster (kfake) and closes it when
// the test ends. It has one broker unless opts say otherwise
// (kfake.NumBrokers); opts come after the defaults and win.
//
// The cluster's log (info level) is kept in memory and printed with t.Logf
// only when the test failed, so passing runs stay quiet.
func NewKafka(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	log := &kafkaTestLog{}
	all := append([]kfake.Opt{kfake.NumBrokers(1), kfake.WithLogger(log)}, opts...)
	c, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatalf("testenv: start kfake cluster: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			log.dump(t)
		}
	})
	return c
}

// KafkaClient returns a kgo client seeded with the cluster's brokers, closed
// when the test ends. Records go to the partition they name
// (kgo.ManualPartitioner). For a TLS or SASL cluster pass the matching
// options (kgo.DialTLSConfig(certs.ClientTLS()), kgo.SASL(...)).
func KafkaClient(t testing.TB, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ClientID("testenv"),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("testenv: new kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateKafkaTopic creates topic with the given number of partitions on
// the cluster and fails the test if it cannot. opts are for the client
// (TLS, SASL), as in KafkaClient. kfake.SeedTopics does the same at start.
func CreateKafkaTopic(t testing.TB, c *kfake.Cluster, topic string, partitions int32, opts ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kafkaHelperTimeout)
	defer cancel()
	adm := kadm.NewClient(KafkaClient(t, c, opts...))
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("testenv: create topic %q with %d partitions: %v", topic, partitions, err)
	}
}

// ProduceKafkaRecords produces n records with values "<topic>-<partition>-<i>"
// to one partition and fails the test unless all were acknowledged. It
// returns the produced records (with their offsets). opts are for the
// client, as in KafkaClient.
func ProduceKafkaRecords(t testing.TB, c *kfake.Cluster, topic string, partition int32, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: partition, Value: fmt.Appendf(nil, "%s-%d-%d", topic, partition, i)}
	}
	ProduceKafka(t, c, recs, opts...)
	return recs
}

// ProduceKafka produces records (to the partition each names) and fails the
// test unless every one was acknowledged.
func ProduceKafka(t testing.TB, c *kfake.Cluster, records []*kgo.Record, opts ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kafkaHelperTimeout)
	defer cancel()
	if err := KafkaClient(t, c, opts...).ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("testenv: produce %d records: %v", len(records), err)
	}
}

// DeleteKafkaRecords deletes the records of a partition before offset, so
// its earliest offset becomes offset (Kafka's DeleteRecords).
func DeleteKafkaRecords(t testing.TB, c *kfake.Cluster, topic string, partition int32, offset int64, opts ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kafkaHelperTimeout)
	defer cancel()
	adm := kadm.NewClient(KafkaClient(t, c, opts...))
	os := kadm.Offsets{}
	os.AddOffset(topic, partition, offset, -1)
	resp, err := adm.DeleteRecords(ctx, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("testenv: delete records of %s/%d before %d: %v", topic, partition, offset, err)
	}
}

// RefusingTCPAddr returns a 127.0.0.1 address where nothing listens, so a
// connection is refused: it listens on a free port and closes it at once.
func RefusingTCPAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("testenv: close listener: %v", err)
	}
	return addr
}

// SilentTCPAddr returns a 127.0.0.1 address that accepts connections and
// never answers nor reads: what a broker behind a stuck proxy, or a wrong
// service, looks like. The listener and the connections it holds are closed
// when the test ends.
func SilentTCPAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listen: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // closed by Cleanup
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// kafkaTestLog keeps the last lines a kfake cluster logs, to print them only
// when the test failed: kfake logs from its own goroutines, also after the
// test ended, when t.Logf would panic.
type kafkaTestLog struct {
	mu    sync.Mutex
	lines []string
}

const kafkaTestLogMaxLines = 2000

func (l *kafkaTestLog) Logf(level kfake.LogLevel, format string, args ...any) {
	if level > kfake.LogLevelInfo {
		return
	}
	line := fmt.Sprintf("kfake [%s] %s", level, fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == kafkaTestLogMaxLines {
		l.lines = append(l.lines[:0], l.lines[kafkaTestLogMaxLines/2:]...)
	}
	l.lines = append(l.lines, line)
}

func (l *kafkaTestLog) dump(t testing.TB) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) > 0 {
		t.Logf("kfake cluster log (last %d lines):\n%s", len(l.lines), strings.Join(l.lines, "\n"))
	}
}

// KafkaAssetConfig returns a validated asset configuration pointing at the
// cluster, topic "alerts", with the given producer settings (nil: the
// defaults).
func KafkaAssetConfig(t testing.TB, c *kfake.Cluster, producer map[string]any) assets.Config {
	t.Helper()
	doc := map[string]any{"hosts": strings.Join(c.ListenAddrs(), ","), "topic": "alerts"}
	if producer != nil {
		doc["producer"] = producer
	}
	cfg, err := assets.Decode(doc, assets.DecodeOptions{})
	if err != nil {
		t.Fatalf("assets.Decode(%v): %v", doc, err)
	}
	return cfg
}

// ServeTCP listens on a loopback port and runs handle on each connection
// (which it closes after handle returns), until the test ends: a peer that
// is not a Kafka broker, for tests of what the client makes of it.
func ServeTCP(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by Cleanup
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}
