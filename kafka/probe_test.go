package kafka_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/kafka"
)

const probeStep = 2 * time.Second

func probe(t *testing.T, a kafka.Access, doc map[string]any) []kafka.Step {
	t.Helper()
	return a.Probe(context.Background(), decodeConfig(t, doc), probeStep, nil)
}

// stepNames lists the steps as name@broker, the broker left out for the
// cluster steps.
func stepNames(steps []kafka.Step) string {
	var names []string
	for _, s := range steps {
		n := s.Name
		if s.Broker != "" {
			n += "@" + s.Broker
		}
		names = append(names, n)
	}
	return strings.Join(names, " ")
}

// A reachable cluster: each host's tcp and kafka steps pass, then the
// cluster's metadata and the topic with its partitions and offsets.
func TestProbeHealthyCluster(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.NumBrokers(2), kfake.ClusterID("probe-cluster"), kfake.SeedTopics(3, "alerts"))
	testenv.ProduceKafkaRecords(t, c, "alerts", 1, 4)
	hosts := c.ListenAddrs()
	steps := probe(t, tempAccess(t), map[string]any{"hosts": strings.Join(hosts, ","), "topic": "alerts"})

	want := "tcp@" + hosts[0] + " kafka@" + hosts[0] + " tcp@" + hosts[1] + " kafka@" + hosts[1] + " metadata topic"
	if got := stepNames(steps); got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	for _, s := range steps {
		if !s.OK() || s.Kind != "" {
			t.Errorf("step %s@%s failed: %v (%s)", s.Name, s.Broker, s.Err, s.Kind)
		}
	}
	meta, topic := steps[4], steps[5]
	if meta.ClusterID != "probe-cluster" || meta.Controller == nil || len(meta.Brokers) != 2 {
		t.Errorf("metadata step: cluster %q, controller %v, %d brokers; want probe-cluster, a controller, 2 brokers", meta.ClusterID, meta.Controller, len(meta.Brokers))
	}
	if topic.Topic != "alerts" || len(topic.Partitions) != 3 {
		t.Fatalf("topic step: %q with %d partitions, want alerts with 3", topic.Topic, len(topic.Partitions))
	}
	for i, p := range topic.Partitions {
		wantEnd := int64(0)
		if i == 1 {
			wantEnd = 4
		}
		if p.Partition != int32(i) || p.EarliestOffset != 0 || p.LatestOffset != wantEnd || p.Error != "" {
			t.Errorf("partition %d: %+v, want partition %d offsets 0..%d without error", i, p, i, wantEnd)
		}
	}
}

// A host that refuses stops at its tcp step, with the cause kept; the
// other host still passes and the cluster is read through it alone.
func TestProbeRefusedHostStopsAtTCP(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	good, refused := c.ListenAddrs()[0], testenv.RefusingTCPAddr(t)
	steps := probe(t, tempAccess(t), map[string]any{"hosts": refused + "," + good, "topic": "alerts"})

	if got, want := stepNames(steps), "tcp@"+refused+" tcp@"+good+" kafka@"+good+" metadata topic"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	tcp := steps[0]
	if tcp.OK() || !errors.Is(tcp.Err, syscall.ECONNREFUSED) || tcp.TimedOut || tcp.Kind != "" {
		t.Errorf("refused tcp step: err %v, timed out %v, kind %q; want ECONNREFUSED, not timed out", tcp.Err, tcp.TimedOut, tcp.Kind)
	}
	for _, s := range steps[1:] {
		if !s.OK() {
			t.Errorf("step %s@%s failed: %v", s.Name, s.Broker, s.Err)
		}
	}
}

// A host that accepts and never answers fails its kafka step as timed out,
// within a small multiple of the step timeout; no cluster step runs.
func TestProbeSilentHostTimesOut(t *testing.T) {
	t.Parallel()
	silent := testenv.SilentTCPAddr(t)
	cfg := decodeConfig(t, map[string]any{"hosts": silent, "topic": "alerts"})
	step := 300 * time.Millisecond
	t0 := time.Now()
	steps := tempAccess(t).Probe(context.Background(), cfg, step, nil)
	took := time.Since(t0)

	if got, want := stepNames(steps), "tcp@"+silent+" kafka@"+silent; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	k := steps[1]
	if k.OK() || !k.TimedOut || k.Waited < step/2 {
		t.Errorf("kafka step: err %v, timed out %v, waited %v; want a timeout after about %v", k.Err, k.TimedOut, k.Waited, step)
	}
	if took > 4*step+time.Second {
		t.Errorf("probe took %v with a step timeout of %v", took, step)
	}
}

// TLS against a plaintext Kafka port: the tls step fails with FailNotTLS,
// the verdict of the probe's own plaintext request.
func TestProbeTLSAgainstPlaintextPort(t *testing.T) {
	t.Parallel()
	host := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts")).ListenAddrs()[0]
	steps := probe(t, tempAccess(t), map[string]any{"hosts": host, "topic": "alerts", "use_ssl": true, "insecure_skip_verify": true})

	if got, want := stepNames(steps), "tcp@"+host+" tls@"+host; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	if s := steps[1]; s.OK() || s.Kind != kafka.FailNotTLS {
		t.Errorf("tls step: err %v, kind %q; want kind %q", s.Err, s.Kind, kafka.FailNotTLS)
	}
}

// The topic step names what failed: a missing topic is FailTopicMissing,
// after the cluster metadata passed.
func TestProbeMissingTopic(t *testing.T) {
	t.Parallel()
	host := testenv.NewKafka(t, kfake.SeedTopics(1, "other")).ListenAddrs()[0]
	steps := probe(t, tempAccess(t), map[string]any{"hosts": host, "topic": "alerts"})

	if got, want := stepNames(steps), "tcp@"+host+" kafka@"+host+" metadata topic"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	if s := steps[3]; s.OK() || s.Kind != kafka.FailTopicMissing || s.Topic != "alerts" || len(s.Partitions) != 0 {
		t.Errorf("topic step: err %v, kind %q, topic %q, %d partitions; want FailTopicMissing on alerts, no partitions", s.Err, s.Kind, s.Topic, len(s.Partitions))
	}
}

// Settings that cannot work fail one config step, before anything
// connects; a host the network policy refuses fails its tcp step with
// the policy's error.
func TestProbeConfigAndPolicy(t *testing.T) {
	t.Parallel()
	steps := probe(t, tempAccess(t), map[string]any{"hosts": "127.0.0.1:1", "topic": "alerts", "use_ssl": true, "ca_cert": "/nonexistent/ca.pem"})
	if len(steps) != 1 || steps[0].Name != kafka.StepConfig || steps[0].OK() {
		t.Fatalf("unreadable ca_cert: steps %q (%v), want one failed config step", stepNames(steps), steps)
	}

	policy, err := kafka.NewHostPolicy(nil, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	a := tempAccess(t)
	a.Hosts = policy
	steps = probe(t, a, map[string]any{"hosts": "127.0.0.1:9092", "topic": "alerts"})
	var denied *kafka.HostDeniedError
	if len(steps) != 1 || steps[0].Name != kafka.StepTCP || !errors.As(steps[0].Err, &denied) || denied.Setting != kafka.SettingDeniedHosts {
		t.Errorf("denied host: steps %q, err %v; want one tcp step refused by %s", stepNames(steps), steps[0].Err, kafka.SettingDeniedHosts)
	}
}
