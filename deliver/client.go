package deliver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
)

// target is where a worker delivers: it sends one outbox row (the
// container c and the artifacts arts the row's batch added to it) and
// returns the SOAR's id of the container (0 when the target has none).
// check says the row may have reached the target in part before: what is
// there must be found out before anything is sent again.
type target interface {
	send(ctx context.Context, r ingest.OutboxRow, c *ingest.StoredContainer, arts []ingest.StoredArtifact, check bool) (int64, error)
}

// failure is a failed attempt and what to do about it: kind "retry"
// (5xx, 429, a timeout, a connection error), "auth" (401, 403: pause) or
// "dead" (any other 4xx: the SOAR refuses this row).
type failure struct {
	kind       string
	msg        string
	answer     string // the SOAR's body, for a dead letter
	retryAfter time.Duration
}

func (f *failure) Error() string { return f.msg }

// maxAnswer bounds what is read of an answer: lists of artifacts are the
// largest, at most a page of them.
const maxAnswer = 8 << 20

// client makes the HTTP requests of one worker.
type client struct {
	base    string
	http    *http.Client
	timeout time.Duration
	auth    func(*http.Request)
	w       *Worker
}

func newClient(w *Worker, d assets.Delivery) (*client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = int(d.Concurrency) + 2
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !d.VerifyTLS} //nolint:gosec // delivery.verify_tls false, the user's choice
	if d.CAPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(d.CAPEM)) {
			return nil, errors.New("delivery.ca_pem holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	tr.TLSClientConfig = tc
	c := &client{base: strings.TrimRight(d.URL, "/"), http: &http.Client{Transport: tr}, timeout: d.RequestTimeout(), w: w}
	token, user := d.Token, d.Username
	if d.Target == assets.TargetXSOARWebhook {
		c.auth = func(r *http.Request) { r.SetBasicAuth(user, token) }
	} else {
		c.auth = func(r *http.Request) { r.Header.Set("ph-auth-token", token) }
	}
	return c, nil
}

// answer is an HTTP answer read whole.
type answer struct {
	status int
	body   []byte
	header http.Header
}

// do sends one request and reads its answer. A request that got no
// answer (timeout, connection error) is a retry failure whose outcome is
// unknown; the caller's next attempt checks.
func (c *client) do(ctx context.Context, method, url string, body any) (*answer, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case json.RawMessage: // encoded already: not scanned again
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(body)
		if err != nil {
			return nil, &failure{kind: "dead", msg: fmt.Sprintf("encode the request to %s: %v", c.what(), err)}
		}
		rd = bytes.NewReader(enc)
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, url, rd)
	if err != nil {
		return nil, &failure{kind: "dead", msg: fmt.Sprintf("request to %s: %v", c.what(), err)}
	}
	c.auth(req)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		resp.Body.Close()
		if err == nil {
			c.observe(start)
			return &answer{status: resp.StatusCode, body: b, header: resp.Header}, nil
		}
	}
	c.observe(start)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, &failure{kind: "retry", msg: fmt.Sprintf("%s %s: no answer within delivery.timeout_ms (%s); the outcome is checked before sending again", method, c.path(url), c.timeout)}
	}
	return nil, &failure{kind: "retry", msg: fmt.Sprintf("%s %s: %v; the outcome is checked before sending again", method, c.path(url), err)}
}

func (c *client) observe(start time.Time) {
	if c.w.observer != nil {
		c.w.observer.DeliveryRequest(c.w.asset, time.Since(start))
	}
}

func (c *client) what() string {
	if c.w.cfg.Delivery.Target == assets.TargetXSOARWebhook {
		return "the XSOAR webhook"
	}
	return "the SOAR"
}

// path is url without the base, for messages.
func (c *client) path(url string) string {
	if p, ok := strings.CutPrefix(url, c.base); ok && p != "" {
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		return p
	}
	return c.base
}

// refusal turns an answer that is not a success into a failure.
func (c *client) refusal(method, url string, a *answer) *failure {
	text := answerText(a.body)
	where := method + " " + c.path(url)
	switch {
	case a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		fix := "set delivery.token to a valid automation user's token"
		if c.w.cfg.Delivery.Target == assets.TargetXSOARWebhook {
			fix = "set delivery.username and delivery.token to the webhook's credentials"
		} else if a.status == http.StatusForbidden {
			fix = "give the automation user permission to create containers and artifacts, or " + fix
		}
		return &failure{kind: "auth", msg: fmt.Sprintf("%s refused the token (HTTP %d): %s (%s: %s)", strings.TrimPrefix(c.what(), "the "), a.status, fix, where, text)}
	case a.status == http.StatusTooManyRequests || a.status == http.StatusRequestTimeout || a.status >= 500:
		return &failure{kind: "retry", retryAfter: retryAfter(a.header.Get("Retry-After")),
			msg: fmt.Sprintf("%s: HTTP %d from %s: %s", where, a.status, c.what(), text)}
	default:
		return &failure{kind: "dead", answer: truncate(string(a.body), 64<<10),
			msg: fmt.Sprintf("%s: %s refused it (HTTP %d): %s", where, c.what(), a.status, text)}
	}
}

// answerText is what to show of an answer: SOAR's message when it is
// JSON with one, else the start of the body.
func answerText(b []byte) string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &m) == nil && m.Message != "" {
		return m.Message
	}
	return truncate(strings.Join(strings.Fields(string(b)), " "), 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
