package devbroker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// start starts a broker on a free loopback port and closes it at the end.
func start(t *testing.T, cfg Config) *Broker {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	b, err := Start(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// newClient returns a franz-go client of addr that creates topics on first
// use (kgo.AllowAutoTopicCreation); newClientAuto can leave that off.
func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClientAuto(t, addr, true, opts...)
}

func newClientAuto(t *testing.T, addr string, autoCreate bool, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(10 * time.Second)}, opts...)
	if autoCreate {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, addr, topic string, values []string) {
	t.Helper()
	cl := newClient(t, addr)
	defer cl.Close()
	rs := make([]*kgo.Record, len(values))
	for i, v := range values {
		rs[i] = &kgo.Record{Topic: topic, Value: []byte(v)}
	}
	if err := cl.ProduceSync(testContext(t), rs...).FirstErr(); err != nil {
		t.Fatalf("producing to %s at %s: %v", topic, addr, err)
	}
}

// consume reads topic from the start until it has want records, and checks
// that the log holds no more than that.
func consume(t *testing.T, addr, topic string, want int) []string {
	t.Helper()
	ctx := testContext(t)
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consuming %s at %s: got %d of %d records: %v", topic, addr, len(got), want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetching %s[%d]: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("listing end offsets of %s: %v", topic, err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != int64(want) {
		t.Errorf("topic %s holds %d records, want %d", topic, total, want)
	}
	return got
}

// partitions returns how many partitions topic has, or -1 if it does not exist.
func partitions(t *testing.T, addr, topic string) int {
	t.Helper()
	adm := kadm.NewClient(newClientAuto(t, addr, false))
	tds, err := adm.ListTopics(testContext(t), topic)
	if err != nil {
		t.Fatalf("listing topic %s: %v", topic, err)
	}
	td := tds[topic]
	if errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return -1
	}
	if td.Err != nil {
		t.Fatalf("listing topic %s: %v", topic, td.Err)
	}
	return len(td.Partitions)
}

func values(n int) []string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = fmt.Sprintf("record-%03d", i)
	}
	return vs
}

func TestProduceConsumeAutoCreatedTopic(t *testing.T) {
	b := start(t, Config{})
	if _, port, _ := net.SplitHostPort(b.Addr()); port == "0" || !strings.HasPrefix(b.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want 127.0.0.1 and the real port", b.Addr())
	}
	want := values(10)
	produce(t, b.Addr(), "alerts", want)
	if got := consume(t, b.Addr(), "alerts", len(want)); !slices.Equal(got, want) {
		t.Errorf("consumed %q, want %q", got, want)
	}
	if n := partitions(t, b.Addr(), "alerts"); n != 1 {
		t.Errorf("auto-created topic has %d partitions, want the default 1", n)
	}
}

// The broker advertises the address clients reached it on, not kfake's
// 127.0.0.1:<port> guess: here a client bootstraps over IPv6 loopback and
// must be told that address to produce and consume.
func TestAdvertisesListenerAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no IPv6 loopback here: %v", err)
		}
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	ln.Close()
	b := start(t, Config{Addr: "[::1]:0"})
	if !strings.HasPrefix(b.Addr(), "[::1]:") {
		t.Fatalf("Addr() = %q, want [::1]:<port>", b.Addr())
	}
	meta, err := kadm.NewClient(newClient(t, b.Addr())).BrokerMetadata(testContext(t))
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if got := net.JoinHostPort(meta.Brokers[0].Host, fmt.Sprint(meta.Brokers[0].Port)); len(meta.Brokers) != 1 || got != b.Addr() {
		t.Fatalf("advertised brokers %v, want just %s", meta.Brokers, b.Addr())
	}
	want := values(3)
	produce(t, b.Addr(), "v6", want)
	if got := consume(t, b.Addr(), "v6", len(want)); !slices.Equal(got, want) {
		t.Errorf("consumed %q, want %q", got, want)
	}
}

func TestUnspecifiedHostAdvertisesLoopback(t *testing.T) {
	b := start(t, Config{Addr: "0.0.0.0:0"})
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want 127.0.0.1:<port>", b.Addr())
	}
	want := values(2)
	produce(t, b.Addr(), "any", want)
	if got := consume(t, b.Addr(), "any", len(want)); !slices.Equal(got, want) {
		t.Errorf("consumed %q, want %q", got, want)
	}
}

func TestRestartKeepsTopicsAndRecords(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	b, err := Start(ctx, Config{Addr: "127.0.0.1:0", DataDir: dir, Partitions: 3}, testLogger(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	want := values(50)
	// One key so every record lands in one partition and order is total.
	cl := newClient(t, b.Addr())
	for _, v := range want {
		cl.Produce(ctx, &kgo.Record{Topic: "events", Key: []byte("k"), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("producing: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flushing: %v", err)
	}
	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// The restart's default partition count differs, so the count we read
	// back can only come from the data directory.
	b2 := start(t, Config{DataDir: dir, Partitions: 1})
	if got := consume(t, b2.Addr(), "events", len(want)); !slices.Equal(got, want) {
		t.Errorf("after restart consumed %q, want %q", got, want)
	}
	if n := partitions(t, b2.Addr(), "events"); n != 3 {
		t.Errorf("after restart topic has %d partitions, want 3", n)
	}
}

// A crash skips Close's save. kfake's Metadata handler saves an auto-created
// topic only on Close, so without our early CreateTopic the topic and its
// records would be gone after a crash. We stand for the crash by copying the
// data directory of a running broker.
func TestCrashKeepsAutoCreatedTopic(t *testing.T) {
	dir := t.TempDir()
	b := start(t, Config{DataDir: dir})
	want := values(5)
	produce(t, b.Addr(), "crashy", want)

	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatalf("copying data dir: %v", err)
	}
	b2 := start(t, Config{DataDir: crashed})
	if got := consume(t, b2.Addr(), "crashy", len(want)); !slices.Equal(got, want) {
		t.Errorf("after crash consumed %q, want %q", got, want)
	}
}

// Old clients (kafka-python 2.0.x) send Metadata v0/v1, which has no
// AllowAutoTopicCreation field; a real broker creates the topics they name.
func TestOldMetadataVersionsAutoCreate(t *testing.T) {
	for _, tc := range []struct {
		version int16
		allow   bool // the request's field, sent from v4 on
		created bool
	}{
		{version: 0, created: true},
		{version: 1, created: true},
		{version: 3, created: true},
		{version: 4, allow: false, created: false},
		{version: 4, allow: true, created: true},
	} {
		name := fmt.Sprintf("v%d", tc.version)
		if tc.version >= 4 {
			name += fmt.Sprintf(" allow=%v", tc.allow)
		}
		t.Run(name, func(t *testing.T) {
			b := start(t, Config{Partitions: 2})
			topic := fmt.Sprintf("old-v%d", tc.version)

			vs := kversion.Stable()
			vs.SetMaxKeyVersion(int16(kmsg.Metadata), tc.version)
			old := newClient(t, b.Addr(), kgo.MaxVersions(vs))
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			req.AllowAutoTopicCreation = tc.allow
			kresp, err := old.Request(testContext(t), req)
			if err != nil {
				t.Fatalf("metadata request: %v", err)
			}
			if req.Version != tc.version {
				t.Fatalf("sent Metadata v%d, want v%d", req.Version, tc.version)
			}
			resp := kresp.(*kmsg.MetadataResponse)
			if len(resp.Topics) != 1 {
				t.Fatalf("response has %d topics, want 1", len(resp.Topics))
			}
			wantCode := kerr.UnknownTopicOrPartition.Code
			if tc.created {
				wantCode = 0
			}
			if code := resp.Topics[0].ErrorCode; code != wantCode {
				t.Errorf("topic error %v, want %v", kerr.ErrorForCode(code), kerr.ErrorForCode(wantCode))
			}

			want := -1
			if tc.created {
				want = 2
			}
			if n := partitions(t, b.Addr(), topic); n != want {
				t.Errorf("topic %s has %d partitions (-1: missing), want %d", topic, n, want)
			}
		})
	}
}

// In Metadata v0 an empty topic list means every topic (there is no null).
func TestMetadataV0EmptyListsAllTopics(t *testing.T) {
	b := start(t, Config{})
	produce(t, b.Addr(), "first", values(1))
	produce(t, b.Addr(), "second", values(1))

	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(kmsg.Metadata), 0)
	old := newClient(t, b.Addr(), kgo.MaxVersions(vs))
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	kresp, err := old.Request(testContext(t), req)
	if err != nil {
		t.Fatalf("metadata request: %v", err)
	}
	var got []string
	for _, rt := range kresp.(*kmsg.MetadataResponse).Topics {
		got = append(got, *rt.Topic)
	}
	slices.Sort(got)
	if want := []string{"first", "second"}; !slices.Equal(got, want) {
		t.Errorf("v0 metadata with no topics listed %q, want %q", got, want)
	}
}

func TestAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	b, err := Start(t.Context(), Config{Addr: addr}, testLogger(t))
	if err == nil {
		b.Close()
		t.Fatalf("Start on %s, which is in use, succeeded", addr)
	}
	if want := "dev_broker.addr " + addr + ": address already in use"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %v is not EADDRINUSE", err)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Addr: "localhost"}, `dev_broker.addr "localhost": not host:port`},
		{Config{Addr: "127.0.0.1:http"}, `dev_broker.addr "127.0.0.1:http": port must be a number`},
		{Config{Addr: "127.0.0.1:0", Partitions: -1}, "dev_broker.partitions -1: must be at least 1"},
	} {
		b, err := Start(t.Context(), tc.cfg, nil)
		if err == nil {
			b.Close()
			t.Errorf("Start(%+v) succeeded", tc.cfg)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Start(%+v) error %q, want it to start with %q", tc.cfg, err, tc.want)
		}
	}
}

func TestCloseTwice(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		b, err := Start(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir}, nil)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		produce(t, b.Addr(), "t", values(1))
		if err := b.Close(); err != nil {
			t.Errorf("first Close (data dir %q): %v", dir, err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("second Close (data dir %q): %v", dir, err)
		}
		// Closed means the port is free again.
		ln, err := net.Listen("tcp", b.Addr())
		if err != nil {
			t.Errorf("after Close, %s is still taken: %v", b.Addr(), err)
		} else {
			ln.Close()
		}
	}
}

func TestStartLogsAddress(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	dir := t.TempDir()
	b, err := Start(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir}, logger)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer b.Close()
	want := fmt.Sprintf(`"level":"INFO","msg":"dev broker started","addr":%q,"data_dir":%q`, b.Addr(), dir)
	if !strings.Contains(buf.String(), want) {
		t.Errorf("log %s\nwant it to contain %s", buf.String(), want)
	}
}

func TestKfakeLogLevels(t *testing.T) {
	var buf bytes.Buffer
	l := &kfakeLogger{logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	l.Logf(kfake.LogLevelDebug, "debug %d", 1)
	l.Logf(kfake.LogLevelInfo, "request %d", 2)
	l.Logf(kfake.LogLevelWarn, "warn %d", 3)
	l.Logf(kfake.LogLevelError, "error %d", 4)
	got := buf.String()
	for _, s := range []string{"debug 1", "request 2"} {
		if strings.Contains(got, s) {
			t.Errorf("kfake line %q logged at info level:\n%s", s, got)
		}
	}
	for _, s := range []string{"level=WARN msg=\"dev broker: warn 3\"", "level=ERROR msg=\"dev broker: error 4\""} {
		if !strings.Contains(got, s) {
			t.Errorf("missing %s in:\n%s", s, got)
		}
	}

	l.startClose()
	l.Logf(kfake.LogLevelError, "persist to disk: %v", errors.New("disk full"))
	if err := l.endClose(); err == nil || !strings.Contains(err.Error(), "persist to disk: disk full") {
		t.Errorf("endClose() = %v, want the save error", err)
	}
}

// kcat (librdkafka) is an independent client: it must be able to produce to
// and consume from the broker. CI installs it; elsewhere we skip without it.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		msg := "kcat not installed (Debian/Ubuntu: apt-get install -y kcat)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	b := start(t, Config{DataDir: filepath.Join(t.TempDir(), "data")})
	ctx := testContext(t)
	want := values(5)

	cmd := exec.CommandContext(ctx, kcat, "-b", b.Addr(), "-t", "from-kcat", "-P")
	cmd.Stdin = strings.NewReader(strings.Join(want, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	if got := consume(t, b.Addr(), "from-kcat", len(want)); !slices.Equal(got, want) {
		t.Errorf("consumed %q, want %q", got, want)
	}

	out, err := exec.CommandContext(ctx, kcat, "-b", b.Addr(), "-t", "from-kcat", "-C", "-o", "beginning", "-e", "-q", "-f", "%s\n").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	if got := strings.Fields(string(out)); !slices.Equal(got, want) {
		t.Errorf("kcat consumed %q, want %q", got, want)
	}
}
