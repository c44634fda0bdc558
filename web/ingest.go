package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/actions"
)

// ingestStatus answers GET /v1/assets/{name}/ingest: per partition the
// stored position, the log-end offset and the lag, the last poll, the
// recorded gaps and the dead-lettered count.
func (h *Handler) ingestStatus(w http.ResponseWriter, r *http.Request) {
	if h.opts.Poller == nil {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EUNAVAILABLE, "ingest status is not available: this server runs no polls"))
		return
	}
	name := chi.URLParam(r, "name")
	cfg, _, err := h.opts.Assets.Resolve(r.Context(), name)
	if soarkafka.ErrorCode(err) == soarkafka.EINVALID {
		// Stored under older rules and refused by these: the status says
		// so, beside what the store holds, so the asset can be found and
		// fixed.
		v, verr := h.opts.Assets.Get(r.Context(), name)
		if verr != nil {
			writeError(w, r, h.opts.Logger, verr)
			return
		}
		topic, _ := v.Config["topic"].(string)
		st, serr := h.opts.Poller.BrokenStatus(r.Context(), name, topic, err)
		if serr != nil {
			writeError(w, r, h.opts.Logger, serr)
			return
		}
		writeJSON(w, http.StatusOK, st)
		return
	}
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	st, err := h.opts.Poller.Status(r.Context(), name, cfg)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// inlineIngestStatus answers POST /v1/ingest/status: the ingest status of
// an inline configuration, whose polls (on poll with the app-run
// document's config and asset_id) are kept under soar:<asset_id>.
func (h *Handler) inlineIngestStatus(w http.ResponseWriter, r *http.Request) {
	if h.opts.Poller == nil {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EUNAVAILABLE, "ingest status is not available: this server runs no polls"))
		return
	}
	// The body: the configuration and the SOAR asset id its polls are
	// kept under.
	var req inlineConfig
	if err := decodeJSON(r, h.opts.MaxBodyBytes, &req); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	cfg, id, err := req.config("GET /v1/assets/{name}/ingest", true)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	st, err := h.opts.Poller.Status(r.Context(), actions.InlineAssetKey(id), cfg)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// ingestHistory answers GET /v1/assets/{name}/history: the asset's last
// polls and its messages and lag per minute over the last 24 hours.
func (h *Handler) ingestHistory(w http.ResponseWriter, r *http.Request) {
	if h.opts.Poller == nil {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EUNAVAILABLE, "poll history is not available: this server runs no polls"))
		return
	}
	name := chi.URLParam(r, "name")
	// The history outlives the asset in the store; the route answers for
	// assets that exist, as the status does.
	if _, err := h.opts.Assets.Get(r.Context(), name); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	hist, err := h.opts.Poller.History(r.Context(), name)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, hist)
}
