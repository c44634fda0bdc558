package poll_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/poll"
)

// clientWatch counts, through kgo hooks, the connections the poller's
// clients dial and the clients it closes.
type clientWatch struct {
	dials, closed atomic.Int64
}

func (w *clientWatch) OnBrokerConnect(kgo.BrokerMetadata, time.Duration, net.Conn, error) {
	w.dials.Add(1)
}

func (w *clientWatch) OnClientClosed(*kgo.Client) { w.closed.Add(1) }

// watchedEnv is an env whose poller reports its clients to the returned
// watch.
func watchedEnv(t *testing.T, opts ...poll.Option) (*env, *clientWatch) {
	t.Helper()
	w := &clientWatch{}
	e := newEnv(t, testenv.SQLiteURL(t), append(opts, poll.WithKafkaOptions(kgo.WithHooks(w)))...)
	t.Cleanup(e.poller.Close)
	return e, w
}

// status is the asset's status with cfg over the env's configuration; a
// Kafka error fails the test.
func (e *env) status(name string, cfg map[string]any) *poll.Status {
	e.t.Helper()
	st, err := e.poller.Status(e.t.Context(), name, e.config(cfg))
	if err != nil {
		e.t.Fatalf("Status(%s): %v", name, err)
	}
	if st.KafkaError != "" {
		e.t.Fatalf("Status(%s): kafka error %s", name, st.KafkaError)
	}
	return st
}

// The assets list asks every asset's status on each load: the second
// Status of an asset reuses its client and dials nothing; a changed
// connection setting gets a new client and closes the old one, a changed
// ingest setting does not.
func TestStatusReusesClient(t *testing.T) {
	e, w := watchedEnv(t)
	e.produce([]int32{0}, 0, 3)

	st := e.status("prod", map[string]any{})
	if st.Lag == nil || len(st.Partitions) != 4 {
		t.Fatalf("first status: lag %v, partitions %+v", st.Lag, st.Partitions)
	}
	first := w.dials.Load()
	if first == 0 {
		t.Fatal("the first Status dialled no broker")
	}
	e.status("prod", map[string]any{})
	e.status("prod", map[string]any{"ingest.interval": "1m"})
	if n := w.dials.Load(); n != first {
		t.Fatalf("Status of an unchanged connection dialled %d more times", n-first)
	}
	if n := w.closed.Load(); n != 0 {
		t.Fatalf("%d clients closed with the connection unchanged", n)
	}

	e.status("prod", map[string]any{"timeout": 6000})
	if n := w.dials.Load(); n == first {
		t.Fatal("Status after a change of timeout did not dial")
	}
	if n := w.closed.Load(); n != 1 {
		t.Fatalf("after a change of timeout %d clients closed, want the old one", n)
	}
}

// A Status whose request failed drops its client, so the next one dials
// anew and shows a broker that came back at once.
func TestStatusDropsFailedClient(t *testing.T) {
	e, w := watchedEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := map[string]any{"hosts": fmt.Sprintf("127.0.0.1:%d", port), "timeout": 1000}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	st, err := e.poller.Status(ctx, "down", e.config(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if st.KafkaError == "" {
		t.Fatal("Status of a closed port has no kafka_error")
	}
	if n := w.closed.Load(); n != 1 {
		t.Fatalf("after a failed Status %d clients closed, want the failed one", n)
	}

	testenv.NewKafka(t, kfake.Ports(port), kfake.SeedTopics(4, topic))
	st = e.status("down", cfg)
	if st.Lag == nil {
		t.Fatalf("the broker is back but Status has no lag: %+v", st)
	}
}

// Past the limit the least recently used client is closed; a client unused
// for the idle time is closed too.
func TestStatusClientsBounded(t *testing.T) {
	e, w := watchedEnv(t, poll.WithStatusClients(time.Hour, 2))
	e.status("a", map[string]any{})
	e.status("b", map[string]any{})
	e.status("a", map[string]any{})
	e.status("c", map[string]any{}) // closes b's client
	if n := w.closed.Load(); n != 1 {
		t.Fatalf("three assets over a limit of two closed %d clients, want 1", n)
	}
	dials := w.dials.Load()
	e.status("a", map[string]any{})
	e.status("c", map[string]any{})
	if n := w.dials.Load(); n != dials {
		t.Fatalf("the two kept clients dialled %d more times", n-dials)
	}
	e.status("b", map[string]any{})
	if n := w.dials.Load(); n == dials {
		t.Fatal("the evicted asset's Status did not dial")
	}

	idle, iw := watchedEnv(t, poll.WithStatusClients(20*time.Millisecond, 0))
	idle.status("a", map[string]any{})
	waitFor(t, "the idle client closed", func() bool { return iw.closed.Load() == 1 }, nil)
}

// Close closes every client Status keeps and leaves no goroutine behind.
func TestStatusClientsClose(t *testing.T) {
	e, w := watchedEnv(t)
	before := runtime.NumGoroutine()
	p := poll.New(e.db, e.parsers, nil, poll.WithKafkaOptions(kgo.WithHooks(w)))
	for _, name := range []string{"a", "b", "c"} {
		if st, err := p.Status(t.Context(), name, e.config(map[string]any{})); err != nil || st.KafkaError != "" {
			t.Fatalf("Status(%s): %v %+v", name, err, st)
		}
	}
	p.Close()
	if n := w.closed.Load(); n != 3 {
		t.Fatalf("Close closed %d clients, want 3", n)
	}
	p.Close() // twice is safe
	// The clients' connection goroutines end as their sockets close.
	waitFor(t, "the goroutines of the closed clients to end", func() bool { return runtime.NumGoroutine() <= before }, nil)
}
