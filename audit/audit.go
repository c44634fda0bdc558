// Package audit is the trail of changes made through the API and the
// console: what an event holds, how the changes of an asset are described
// without its secrets, and the Recorder both edges call after a change
// succeeded.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/soarkafka/soarkafka/assets"
)

// Actions an event records.
const (
	ActionCreate  = "create"
	ActionUpdate  = "update"
	ActionDelete  = "delete"
	ActionRetry   = "retry"
	ActionEnable  = "enable"
	ActionDisable = "disable"
)

// Kinds of object an event names.
const (
	KindAsset    = "asset"
	KindParser   = "parser"
	KindDelivery = "delivery" // an asset's push delivery; Name is the asset's
)

// ActorAPI is the actor of a change made with the API token.
const ActorAPI = "api token"

// ConsoleActor is the actor of a change made in a console session; short
// is a short, non-secret id of the session (never its cookie).
func ConsoleActor(short string) string { return "console session " + short }

// Secret is what Changes holds for a secret field that was written: the
// value itself never enters the trail, sealed or not.
const Secret = "changed"

// Event is one change.
type Event struct {
	ID      int64          `json:"id"`
	Time    time.Time      `json:"time"`
	Client  string         `json:"client"`
	Actor   string         `json:"actor"`
	Method  string         `json:"method"`
	Route   string         `json:"route"`
	Kind    string         `json:"object_kind"`
	Name    string         `json:"object_name"`
	Action  string         `json:"action"`
	Version *int64         `json:"version"`
	Changes map[string]any `json:"changes"`
}

// Filter selects events: each zero field selects all. Since is inclusive,
// Until exclusive; Page counts from 0, PageSize 0 reads all.
type Filter struct {
	Kind, Name   string
	Since, Until time.Time
	Page         int
	PageSize     int
}

// Store keeps the trail.
type Store interface {
	RecordAudit(ctx context.Context, e *Event) error
	ListAudit(ctx context.Context, f Filter) ([]Event, int, error)
	PruneAudit(ctx context.Context, before time.Time) (int64, error)
}

// DefaultRetention is how long events are kept unless configured.
const DefaultRetention = 365 * 24 * time.Hour

// pruneEvery is how often Record also prunes events past the retention:
// an index range on the time column, cheap, but not worth every change.
const pruneEvery = time.Hour

// recordTimeout bounds the recording of one event, pruning included.
const recordTimeout = 10 * time.Second

// Recorder records events; the API and the console share one. A nil
// *Recorder records nothing.
type Recorder struct {
	store     Store
	logger    *slog.Logger
	retention time.Duration
	trusted   []*net.IPNet
	now       func() time.Time

	mu        sync.Mutex
	lastPrune time.Time
}

// NewRecorder returns a recorder into store, keeping events for retention
// (DefaultRetention when 0 or less) and believing X-Forwarded-For from the
// trusted proxies only (see ClientAddress).
func NewRecorder(store Store, logger *slog.Logger, retention time.Duration, trusted []*net.IPNet) *Recorder {
	if retention <= 0 {
		retention = DefaultRetention
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{store: store, logger: logger, retention: retention, trusted: trusted, now: time.Now}
}

// peerKey holds, in a request's context, the peer address and
// X-Forwarded-For as they arrived, before a middleware such as chi's
// RealIP rewrites RemoteAddr from headers any client can send.
type peerKey struct{}

type peer struct{ addr, forwardedFor string }

// KeepPeer keeps the request's peer and X-Forwarded-For for Event; put it
// before any middleware that rewrites RemoteAddr.
func KeepPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), peerKey{}, peer{r.RemoteAddr, r.Header.Get("X-Forwarded-For")})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Peer is the address the request's connection came from, as KeepPeer
// saw it before any proxy header rewrote RemoteAddr; RemoteAddr when
// KeepPeer did not run.
func Peer(req *http.Request) string {
	if p, ok := req.Context().Value(peerKey{}).(peer); ok {
		return p.addr
	}
	return req.RemoteAddr
}

// Event is the event of a change req made, by actor (ActorAPI or
// ConsoleActor): its client address, method and route pattern (chi's, or
// the path outside chi), the object, the action and the version after the
// change (0: none). The console calls it with its actor, then Record.
func (r *Recorder) Event(req *http.Request, actor, kind, name, action string, version int64, changes map[string]any) Event {
	p, ok := req.Context().Value(peerKey{}).(peer)
	if !ok {
		p = peer{addr: req.RemoteAddr} // forwarded-for unknown: the peer only
	}
	route := req.URL.Path
	if rc := chi.RouteContext(req.Context()); rc != nil && rc.RoutePattern() != "" {
		route = rc.RoutePattern()
	}
	var trusted []*net.IPNet
	if r != nil {
		trusted = r.trusted
	}
	e := Event{
		Client: ClientAddress(p.addr, p.forwardedFor, trusted),
		Actor:  actor, Method: req.Method, Route: req.Method + " " + route,
		Kind: kind, Name: name, Action: action, Changes: changes,
	}
	if version > 0 {
		e.Version = &version
	}
	return e
}

// Store is where the recorder keeps the trail, for reading it back.
func (r *Recorder) Store() Store {
	if r == nil {
		return nil
	}
	return r.store
}

// Record keeps e. It is called after the change succeeded; a failure to
// record is logged and returned for the caller to ignore: the change is
// made and answered already, and undoing it would turn an audit outage
// into a configuration outage.
func (r *Recorder) Record(ctx context.Context, e Event) error {
	if r == nil || r.store == nil {
		return nil
	}
	// The change is done: a client that hangs up must not lose its event,
	// and a store that hangs must not hold the answer for long.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if e.Changes == nil {
		e.Changes = map[string]any{}
	}
	if err := r.store.RecordAudit(ctx, &e); err != nil {
		r.logger.Error("audit: change made but not recorded", "kind", e.Kind, "name", e.Name,
			"action", e.Action, "actor", e.Actor, "route", e.Route, "err", err)
		return fmt.Errorf("audit: record %s %s %s: %w", e.Action, e.Kind, e.Name, err)
	}
	r.prune(ctx)
	return nil
}

func (r *Recorder) prune(ctx context.Context) {
	now := r.now()
	r.mu.Lock()
	due := now.Sub(r.lastPrune) >= pruneEvery
	if due {
		r.lastPrune = now
	}
	r.mu.Unlock()
	if !due {
		return
	}
	n, err := r.store.PruneAudit(ctx, now.Add(-r.retention))
	if err != nil {
		r.logger.Warn("audit: prune events past the retention", "err", err)
	} else if n > 0 {
		r.logger.Info("audit: pruned events past the retention", "events", n, "retention", r.retention)
	}
}

// ClientAddress is the client address to record: the peer's host. A
// forwarded address is taken only from a peer among trusted, the first
// address of X-Forwarded-For that is not itself a trusted proxy, walking
// from the right as each proxy appends.
func ClientAddress(peer, forwardedFor string, trusted []*net.IPNet) string {
	host := peer
	if h, _, err := net.SplitHostPort(peer); err == nil {
		host = h
	}
	if forwardedFor == "" || !isTrusted(host, trusted) {
		return host
	}
	hops := strings.Split(forwardedFor, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if net.ParseIP(hop) == nil {
			return host // malformed: keep what we know
		}
		host = hop
		if !isTrusted(hop, trusted) {
			return hop
		}
	}
	return host
}

func isTrusted(host string, trusted []*net.IPNet) bool {
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	for _, n := range trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// AssetChanges describes a written asset: each changed field with its old
// and new values (for a new asset, each field the input gave, as stored),
// and each secret field the input wrote (set or cleared) as Secret. old is nil for a created asset; input is the configuration the
// client sent. The action is enable or disable when ingest.enabled flipped,
// create for a new asset, update otherwise.
func AssetChanges(old, updated *assets.View, input map[string]any) (action string, changes map[string]any) {
	changes = map[string]any{}
	var before map[string]any
	if old != nil {
		before = flatten(old.Config)
		if old.Description != updated.Description {
			changes["description"] = map[string]any{"old": old.Description, "new": updated.Description}
		}
	} else if updated.Description != "" {
		changes["description"] = map[string]any{"new": updated.Description}
	}
	after := flatten(updated.Config)
	sent := flatten(input)
	for _, k := range slices.Sorted(maps.Keys(unionKeys(before, after))) {
		if f, ok := assets.FieldByName(k); ok && f.Secret {
			continue // never a value, even had the view carried one
		}
		if _, given := sent[k]; old == nil && !given {
			continue // a new asset's defaults: the registry's, not a change of anyone's
		}
		o, hadOld := before[k]
		n, hasNew := after[k]
		if hadOld && hasNew && reflect.DeepEqual(o, n) {
			continue
		}
		c := map[string]any{}
		if hadOld {
			c["old"] = o
		}
		if hasNew {
			c["new"] = n
		}
		changes["config."+k] = c
	}
	for _, name := range assets.SecretFields() {
		_, written := sent[name]
		flipped := old != nil && old.Secrets[name] != updated.Secrets[name]
		if written || flipped {
			changes["config."+name] = Secret
		}
	}
	action = ActionUpdate
	switch {
	case old == nil:
		action = ActionCreate
	case enabled(old) != enabled(updated):
		action = ActionDisable
		if enabled(updated) {
			action = ActionEnable
		}
	}
	return action, changes
}

// enabled is an asset's ingest.enabled; absent is the registry's default.
func enabled(v *assets.View) bool {
	if b, ok := flatten(v.Config)["ingest.enabled"].(bool); ok {
		return b
	}
	if f, ok := assets.FieldByName("ingest.enabled"); ok {
		b, _ := f.Default.(bool)
		return b
	}
	return false
}

// flatten turns a nested configuration document into dotted field names.
// A map at a registered field name (a field whose value is an object) is a
// leaf, as is any value that is not a map. A secret field's value is
// dropped here, so that nothing below ever holds it.
func flatten(doc map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			f, known := assets.FieldByName(name)
			if sub, ok := v.(map[string]any); ok && !known {
				walk(name, sub)
				continue
			}
			if known && f.Secret {
				out[name] = Secret
				continue
			}
			out[name] = normalize(v)
		}
	}
	walk("", doc)
	return out
}

// normalize makes values read from JSON and values built in Go compare
// alike (a json.Number against a float64, an int against a float64).
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}

func unionKeys(a, b map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// ParseTrustedProxies reads the audit.trusted_proxies setting: addresses
// or CIDR ranges.
func ParseTrustedProxies(list []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, s := range list {
		if _, n, err := net.ParseCIDR(s); err == nil {
			out = append(out, n)
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR range such as 10.0.0.0/8", s)
		}
		bits := 128
		if ip.To4() != nil {
			ip, bits = ip.To4(), 32
		}
		out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
	}
	return out, nil
}
