package web

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
)

// Bounds of one GET /v1/pull answer.
const (
	defaultPullArtifacts  = 500
	maxPullArtifacts      = 10000
	defaultPullContainers = 100
	maxPullContainers     = 1000
)

// pullCursorEnd is the cursor value that asks for the current end.
const pullCursorEnd = "end"

// soarAssetPrefix is how an inline configuration's polls are stored
// (actions.InlineAssetKey): soar:<asset_id>.
const soarAssetPrefix = "soar:"

// pull answers GET /v1/pull: the containers and artifacts stored past the
// cursor, for a SOAR app that pages through them with it.
func (h *Handler) pull(w http.ResponseWriter, r *http.Request) {
	repo, ok := h.queryRepository(w, r)
	if !ok {
		return
	}
	q := queryParams{values: r.URL.Query()}
	req := ingest.PullRequest{Asset: q.values.Get("asset")}
	if req.Asset == "" {
		q.bad("asset", "required: the name of a stored asset, or soar:<asset_id> for the polls of a SOAR asset's inline configuration")
	} else if id, isSOAR := strings.CutPrefix(req.Asset, soarAssetPrefix); isSOAR {
		if _, err := soarAssetID(id); err != nil || id == "" {
			q.bad("asset", "%q: after soar: give the SOAR asset id (the app-run document's asset_id)", req.Asset)
		}
	}
	switch c := q.values.Get("cursor"); c {
	case pullCursorEnd:
		req.End = true
	default:
		cur, err := ingest.ParsePullCursor(c)
		if err != nil {
			q.bad("cursor", "%v", err)
		}
		req.Cursor = cur
	}
	req.MaxArtifacts = q.integer("max_artifacts", defaultPullArtifacts, 1, maxPullArtifacts, "")
	req.MaxContainers = q.integer("max_containers", defaultPullContainers, 1, maxPullContainers, "")
	if err := q.err(); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	if !strings.HasPrefix(req.Asset, soarAssetPrefix) && h.opts.Assets != nil {
		// A misspelt name would otherwise answer nothing, for ever.
		if _, err := h.opts.Assets.Get(r.Context(), req.Asset); err != nil {
			if soarkafka.ErrorCode(err) == soarkafka.ENOTFOUND {
				err = soarkafka.Errorf(soarkafka.ENOTFOUND, "asset %q not found: give the name of a stored asset (GET /v1/assets), or soar:<asset_id> for a SOAR asset's inline configuration", req.Asset)
			}
			writeError(w, r, h.opts.Logger, err)
			return
		}
	}
	page, err := repo.Pull(r.Context(), req)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	containers := make([]map[string]json.RawMessage, len(page.Items))
	for i := range page.Items {
		item := &page.Items[i]
		if containers[i], err = containerJSON(&item.Container); err != nil {
			writeError(w, r, h.opts.Logger, err)
			return
		}
		arts := make([]map[string]json.RawMessage, len(item.Artifacts))
		for j := range item.Artifacts {
			if arts[j], err = artifactJSON(&item.Artifacts[j]); err != nil {
				writeError(w, r, h.opts.Logger, err)
				return
			}
		}
		if containers[i]["artifacts"], err = json.Marshal(arts); err != nil {
			writeError(w, r, h.opts.Logger, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"containers": containers, "cursor": page.Cursor.String(), "more": page.More})
}
