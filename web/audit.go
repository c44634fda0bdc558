package web

import (
	"net/http"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/audit"
)

// auditEvent is the event of a change made by this request with the API
// token.
func (h *Handler) auditEvent(r *http.Request, kind, name, action string, version int64, changes map[string]any) audit.Event {
	return h.opts.Audit.Event(r, audit.ActorAPI, kind, name, action, version, changes)
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
