package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/audit"
)

func (h *Handler) listAssets(w http.ResponseWriter, r *http.Request) {
	views, err := h.opts.Assets.List(r.Context())
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(views), "data": views})
}

func (h *Handler) createAsset(w http.ResponseWriter, r *http.Request) {
	var in assets.Input
	if err := decodeJSON(r, h.opts.MaxBodyBytes, &in); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	if err := bodyText("name", in.Name, "description", in.Description); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	v, err := h.opts.Assets.Create(r.Context(), in)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	action, changes := audit.AssetChanges(nil, v, in.Config)
	h.record(r, h.auditEvent(r, audit.KindAsset, v.Name, action, v.Version, changes))
	w.Header().Set("Location", "/v1/assets/"+v.Name)
	writeJSON(w, http.StatusCreated, v)
}

func (h *Handler) getAsset(w http.ResponseWriter, r *http.Request) {
	v, err := h.opts.Assets.Get(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) updateAsset(w http.ResponseWriter, r *http.Request) {
	var in assets.Input
	if err := decodeJSON(r, h.opts.MaxBodyBytes, &in); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	if err := bodyText("name", in.Name, "description", in.Description); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	name := chi.URLParam(r, "name")
	// What it was, for the audit to say what changed. An update between
	// this read and ours shows in the trail as its own event; ours then
	// lists its changes too, at worst.
	old, _ := h.opts.Assets.Get(r.Context(), name)
	v, err := h.opts.Assets.Update(r.Context(), name, in)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	action, changes := audit.AssetChanges(old, v, in.Config)
	if old == nil {
		// The read before failed, the update did not: still an update,
		// its fields as given.
		action = audit.ActionUpdate
	}
	h.record(r, h.auditEvent(r, audit.KindAsset, name, action, v.Version, changes))
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) deleteAsset(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := h.opts.Assets.Delete(r.Context(), name); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	h.record(r, h.auditEvent(r, audit.KindAsset, name, audit.ActionDelete, 0, nil))
	w.WriteHeader(http.StatusNoContent)
}
