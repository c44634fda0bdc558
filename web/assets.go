package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/soarkafka/soarkafka/assets"
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
	v, err := h.opts.Assets.Update(r.Context(), chi.URLParam(r, "name"), in)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) deleteAsset(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := h.opts.Assets.Delete(r.Context(), name); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
