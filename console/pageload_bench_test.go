package console_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// The page-load benchmark's world: the issue's "50 assets and 10,000
// containers".
const (
	benchAssets             = 50
	benchContainersPerAsset = 200 // 50 × 200 = 10,000 containers, each with its artifact
)

// pageLoad is one page the benchmark loads. A new page gets a line here.
type pageLoad struct{ name, path string }

var pageLoads = []pageLoad{
	{"signin", "/signin"},
	{"assets", "/assets"},
	{"asset-new", "/assets/new"},
	{"asset-edit", "/assets/bench-07/edit"},
	{"asset-detail", "/assets/bench-07"},
	{"parsers", "/parsers"},
	{"parser", "/parsers/default"},
	{"integrations", "/integrations"},
	{"audit", "/audit"},
	{"containers", "/containers"},
	{"containers-of-asset", "/containers?asset=bench-07"},
	{"container", "/containers/5000"},
	{"post-data", "/post-data"},
}

// loadFragment finds what a page loads at once with htmx: an element
// whose hx-trigger fires on load, and its hx-get.
var (
	loadTrigger = regexp.MustCompile(`<[^>]*\bhx-trigger="(?:load|[^"]*[ ,]load)\b[^"]*"[^>]*>`)
	hxGet       = regexp.MustCompile(`\bhx-get="([^"]+)"`)
)

// benchWorld is the server the page-load benchmark measures, started once
// for all its sub-benchmarks.
type benchWorld struct {
	srv     *testenv.Soarkafka
	session *http.Cookie
	client  *http.Client
}

var (
	benchOnce  sync.Once
	benchState *benchWorld
)

// BenchmarkConsolePageLoad loads each console page the way a browser does
// on navigation, over HTTP from the real server (its own process, SQLite,
// the dev broker): the page, then at once every fragment the page loads
// with htmx (the assets list's health). Each sub-benchmark reports the
// full load's p50 and p99 and, in the same run, those of a bare Go HTTP
// server answering the same number of requests with the same bytes, the
// floor the machine sets. Run it with
//
//	go test -run '^$' -bench ConsolePageLoad -benchtime 200x ./console
func BenchmarkConsolePageLoad(b *testing.B) {
	benchOnce.Do(func() { benchState = startBenchWorld(b) })
	w := benchState
	if w == nil {
		b.Fatal("the benchmark's server did not start (see the first sub-benchmark's failure)")
	}
	for _, p := range pageLoads {
		b.Run(p.name, func(b *testing.B) {
			// One load to learn the fragments and the sizes the bare
			// server mirrors.
			sizes := w.load(b, p.path)
			bare := bareServer(b, sizes)
			var page, floor []time.Duration
			for b.Loop() {
				start := time.Now()
				w.load(b, p.path)
				page = append(page, time.Since(start))
				start = time.Now()
				bare.load(b)
				floor = append(floor, time.Since(start))
			}
			reportPercentiles(b, "", page)
			reportPercentiles(b, "bare-", floor)
			b.ReportMetric(float64(len(sizes)), "requests")
			total := 0
			for _, s := range sizes {
				total += s
			}
			b.ReportMetric(float64(total), "bytes")
		})
	}
}

func startBenchWorld(b *testing.B) *benchWorld {
	srv := startServer(b)
	// Each asset's topic holds its share of the messages; one poll
	// each turns them into containers and artifacts through the real
	// ingest path (a user parser in the sandbox, the store).
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Broker), kgo.AllowAutoTopicCreation())
	if err != nil {
		b.Fatal(err)
	}
	var recs []*kgo.Record
	for a := range benchAssets {
		topic := fmt.Sprintf("bench-%02d", a)
		for i := range benchContainersPerAsset {
			recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil,
				`{"name": "alert %d", "severity": "high", "source_ip": "10.0.%d.%d", "message": "suspicious login from 10.0.%d.%d"}`, i, a, i%250, a, i%250)})
		}
	}
	if err := cl.ProduceSync(b.Context(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	cl.Close()
	// One container per message, with its artifact: the parser of the
	// parser tests.
	api(b, srv, "POST", "/v1/parsers", map[string]any{"name": "bench", "source": parserSource("bench")}, nil)
	for a := range benchAssets {
		name := fmt.Sprintf("bench-%02d", a)
		api(b, srv, "POST", "/v1/assets", map[string]any{"name": name, "description": "page-load benchmark asset " + name,
			"config": map[string]any{"hosts": srv.Broker, "topic": name, "read_from_beginning": true, "timeout": 5000,
				"message_parser": "bench", "delivery.token": "t"}}, nil)
		var res map[string]any
		api(b, srv, "POST", "/v1/actions/on_poll", map[string]any{"asset": name}, &res)
		sum, _ := res["summary"].(map[string]any)
		if res["status"] != "success" || sum["containers_created"] != float64(benchContainersPerAsset) {
			b.Fatalf("poll %s: %v, want %d containers", name, res, benchContainersPerAsset)
		}
	}
	client := noRedirect(b, "")
	resp := postSignIn(b, client, srv.URL, srv.Token)
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "soarkafka_session" {
			session = ck
		}
	}
	if session == nil {
		b.Fatalf("sign-in: %d, no session cookie", resp.StatusCode)
	}
	return &benchWorld{srv: srv, session: session, client: client}
}

// load fetches path and, at once, the fragments it loads, as a browser
// does (in parallel); it returns each answer's size, the page's first.
func (w *benchWorld) load(b *testing.B, path string) []int {
	body := w.get(b, path)
	frags := fragments(body)
	sizes := make([]int, 1+len(frags))
	sizes[0] = len(body)
	var wg sync.WaitGroup
	for i, f := range frags {
		wg.Go(func() { sizes[1+i] = len(w.get(b, f)) })
	}
	wg.Wait()
	return sizes
}

func (w *benchWorld) get(b *testing.B, path string) string {
	req, _ := http.NewRequest("GET", w.srv.URL+path, nil)
	req.AddCookie(w.session)
	resp, err := w.client.Do(req)
	if err != nil {
		b.Error(err)
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return string(body)
}

// fragments are the paths a page loads with htmx as soon as it is shown.
func fragments(page string) []string {
	var out []string
	for _, tag := range loadTrigger.FindAllString(page, -1) {
		if m := hxGet.FindStringSubmatch(tag); m != nil {
			out = append(out, strings.ReplaceAll(m[1], "&amp;", "&"))
		}
	}
	return out
}

// bare is a plain Go HTTP server answering, for each request of a page
// load, a body of the same size: the loop's floor on this machine.
type bare struct {
	url    string
	client *http.Client
	n      int
}

func bareServer(b *testing.B, sizes []int) *bare {
	bodies := make([][]byte, len(sizes))
	for i, s := range sizes {
		bodies[i] = []byte(strings.Repeat("x", s))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/"), &i)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(bodies[i])
	}))
	b.Cleanup(srv.Close)
	return &bare{url: srv.URL, client: noRedirect(b, ""), n: len(sizes)}
}

func (s *bare) load(b *testing.B) {
	get := func(i int) {
		resp, err := s.client.Get(fmt.Sprintf("%s/%d", s.url, i))
		if err != nil {
			b.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get(0)
	var wg sync.WaitGroup
	for i := 1; i < s.n; i++ {
		wg.Go(func() { get(i) })
	}
	wg.Wait()
}

func reportPercentiles(b *testing.B, prefix string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := int(q * float64(len(d)-1))
		return float64(d[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), prefix+"p50-ms")
	b.ReportMetric(at(0.99), prefix+"p99-ms")
}
