package web

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/audit"
)

// peerKey holds, in a request's context, the peer address and
// X-Forwarded-For as they arrived, before middleware.RealIP rewrites
// RemoteAddr from headers any client can send: the audit takes a forwarded
// address only from a trusted proxy.
type peerKey struct{}

type peer struct{ addr, forwardedFor string }

func keepPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), peerKey{}, peer{r.RemoteAddr, r.Header.Get("X-Forwarded-For")})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// auditEvent is the event of a change made by this request with the API
// token: its client, method and route pattern, and what it changed.
func (h *Handler) auditEvent(r *http.Request, kind, name, action string, version int64, changes map[string]any) audit.Event {
	p, _ := r.Context().Value(peerKey{}).(peer)
	if p.addr == "" {
		p.addr = r.RemoteAddr
	}
	e := audit.Event{
		Client: audit.ClientAddress(p.addr, p.forwardedFor, h.opts.TrustedProxies),
		Actor:  audit.ActorAPI, Method: r.Method, Route: r.Method + " " + chi.RouteContext(r.Context()).RoutePattern(),
		Kind: kind, Name: name, Action: action, Changes: changes,
	}
	if version > 0 {
		e.Version = &version
	}
	return e
}

// record keeps the event of a change that succeeded. A failure is logged
// by the recorder and not answered: the change is made.
func (h *Handler) record(r *http.Request, e audit.Event) {
	_ = h.opts.Audit.Record(r.Context(), e)
}

// listAudit answers GET /v1/audit: the trail, newest first.
func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request) {
	repo := h.opts.Audit.Store()
	if repo == nil {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EUNAVAILABLE, "the audit trail is not available: this server was started without a store for it"))
		return
	}
	q := queryParams{values: r.URL.Query()}
	f := audit.Filter{Kind: q.values.Get("object_kind"), Name: q.values.Get("object_name")}
	switch f.Kind {
	case "", audit.KindAsset, audit.KindParser, audit.KindDelivery:
	default:
		q.bad("object_kind", "%q: want asset, parser or delivery", f.Kind)
	}
	f.Since, f.Until = q.time("since"), q.time("until")
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		q.bad("until", "%s is not after since %s: give an until later than since (since inclusive, until exclusive)",
			f.Until.Format(time.RFC3339Nano), f.Since.Format(time.RFC3339Nano))
	}
	p := q.paging()
	if err := q.err(); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	f.Page, f.PageSize = p.store()
	list, total, err := repo.ListAudit(r.Context(), f)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	if err := p.check(total, "audit events"); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, p.answer(total, list))
}
