package web

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/audit"
	"github.com/soarkafka/soarkafka/deliver"
)

// Delivery answers the push delivery routes; the deliver package's
// service implements it.
type Delivery interface {
	Report(ctx context.Context, asset string) (*deliver.Report, error)
	RetryDead(ctx context.Context, asset string) (int64, error)
}

// deliveryStatus answers GET /v1/assets/{name}/delivery: the outbox's
// counts, the last error, the oldest waiting container's age, and whether
// delivery runs here, waits on another replica, or is paused.
func (h *Handler) deliveryStatus(w http.ResponseWriter, r *http.Request) {
	if h.opts.Delivery == nil {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EUNAVAILABLE, "push delivery is not available: this server runs no delivery"))
		return
	}
	rep, err := h.opts.Delivery.Report(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// retryDelivery answers POST /v1/assets/{name}/delivery/retry: the
// asset's delivery dead letters go back to the outbox.
func (h *Handler) retryDelivery(w http.ResponseWriter, r *http.Request) {
	if h.opts.Delivery == nil {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EUNAVAILABLE, "push delivery is not available: this server runs no delivery"))
		return
	}
	name := chi.URLParam(r, "name")
	n, err := h.opts.Delivery.RetryDead(r.Context(), name)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	h.record(r, h.auditEvent(r, audit.KindDelivery, name, audit.ActionRetry, 0, map[string]any{"retried": n}))
	writeJSON(w, http.StatusOK, map[string]int64{"retried": n})
}
