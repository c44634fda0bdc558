package kafka_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/kafka"
)

// A pooled producer whose login fails is closed at once: it neither keeps
// retrying its login, logging each time, until its idle close, nor serves
// the next send; that send builds a new client and gets a clean error.
func TestPoolClosesProducerWhoseLoginFailed(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.EnableSASL(), kfake.Superuser(assets.MechanismPlain, "soar", "pw"), kfake.SeedTopics(1, "alerts"))
	logs := &testenv.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	pool := kafka.NewPool(logger, kafka.WithIdleTimeout(time.Hour))
	t.Cleanup(pool.Close)
	cfg := decodeConfig(t, map[string]any{"hosts": c.ListenAddrs()[0], "sasl_mechanism": assets.MechanismPlain, "username": "soar", "password": "wrong"})

	send := func() error {
		cl, release, err := pool.Acquire(context.Background(), "prod", cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Topic: "alerts", Value: []byte("x")}).FirstErr()
	}
	if err := send(); err == nil {
		t.Fatal("produce with a wrong password succeeded")
	}
	deadline := time.Now().Add(producerTestWait)
	for pool.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the producer whose login failed is still pooled; log:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "producer closed: its login to the brokers failed") {
		t.Errorf("no line says why the producer was closed; log:\n%s", logs)
	}

	// Nothing keeps logging once it is closed. The close runs in the
	// background and ends with its repeat counts: wait until the log has
	// been quiet for a second.
	before := strings.Count(logs.String(), "\n")
	for quiet := time.Now(); time.Since(quiet) < time.Second && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if n := strings.Count(logs.String(), "\n"); n != before {
			before, quiet = n, time.Now()
		}
	}
	time.Sleep(3 * time.Second)
	if after := strings.Count(logs.String(), "\n"); after != before {
		t.Errorf("%d log lines in 3s after the producer was closed:\n%s", after-before, logs.String())
	}

	// The next send gets a new client, and the same clean failure.
	if err := send(); err == nil {
		t.Fatal("second produce with a wrong password succeeded")
	}
}

// A client whose broker keeps refusing it writes each distinct line once
// per window, then, when it closes, how often the line repeated.
func TestClientLogsRepeatsOnce(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.EnableSASL(), kfake.Superuser(assets.MechanismPlain, "soar", "pw"), kfake.SeedTopics(1, "alerts"))
	logs := &testenv.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := decodeConfig(t, map[string]any{"hosts": c.ListenAddrs()[0], "sasl_mechanism": assets.MechanismPlain, "username": "soar", "password": "wrong"})
	// Retried quickly, as a long-lived producer retries over minutes.
	cl, err := kafka.Access{}.NewClient(cfg, logger, append(kafka.ProducerOptions(cfg),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }), kgo.MetadataMinAge(10*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	cl.ProduceSync(ctx, &kgo.Record{Topic: "alerts", Value: []byte("x")})
	cancel()
	cl.Close()
	out := logs.String()
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		_, key, _ := strings.Cut(l, " level=")
		key, _, _ = strings.Cut(key, " repeated=")
		seen[key]++
	}
	for k, n := range seen {
		if n > 2 { // the line, then its repeat count
			t.Errorf("%d times: %s", n, k)
		}
	}
	if !strings.Contains(out, " repeated=") {
		t.Errorf("no repeat count after the refused logins; log:\n%s", out)
	}
}
