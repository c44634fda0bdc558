package web

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/actions"
	"github.com/soarkafka/soarkafka/assets"
)

// actionRequest accepts both request shapes of POST /v1/actions/{identifier}:
// ours ({"asset" or "config", "parameters": {...}}) and the SOAR app-run
// document ({"action", "identifier", "config", "parameters": [{...}, ...],
// "asset_id"}), in which parameters is a list of parameter sets.
type actionRequest struct {
	Asset      string         `json:"asset"`
	Config     map[string]any `json:"config"`
	Parameters jsontext.Value `json:"parameters"`
	Action     string         `json:"action"`
	Identifier string         `json:"identifier"`
	AssetID    any            `json:"asset_id"`
}

// actionsResponse answers an app-run document: one result per parameter
// set, and an overall status that fails when any run failed.
type actionsResponse struct {
	Identifier string            `json:"identifier"`
	Status     string            `json:"status"`
	Message    string            `json:"message"`
	Results    []*actions.Result `json:"results"`
}

func (h *Handler) runAction(w http.ResponseWriter, r *http.Request) {
	identifier := chi.URLParam(r, "identifier")
	if err := h.opts.Runner.Check(identifier); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	var req actionRequest
	if err := decodeJSON(r, h.opts.MaxBodyBytes, &req); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	if req.Identifier != "" && req.Identifier != identifier {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EINVALID,
			"identifier %q in the body differs from %q in the URL", req.Identifier, identifier))
		return
	}

	paramSets, list, err := parameterSets(req.Parameters)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}

	var target actions.Target
	switch {
	case req.Asset != "" && req.Config != nil:
		err = soarkafka.Errorf(soarkafka.EINVALID, "give either asset (a stored asset's name) or config (an inline configuration), not both")
	case req.Asset != "":
		target.Asset = req.Asset
		target.Config, _, err = h.opts.Assets.Resolve(r.Context(), req.Asset)
	case req.Config != nil:
		target.Config, err = assets.Decode(req.Config, assets.DecodeOptions{IgnoreUnknown: true})
	default:
		err = soarkafka.Errorf(soarkafka.EINVALID, "missing asset: give asset (a stored asset's name) or config (an inline asset configuration)")
	}
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}

	var results []*actions.Result
	for _, params := range paramSets {
		res, err := h.opts.Runner.Run(r.Context(), identifier, target, params)
		if err != nil {
			writeError(w, r, h.opts.Logger, err)
			return
		}
		results = append(results, res)
	}
	if !list {
		writeJSON(w, http.StatusOK, results[0])
		return
	}
	resp := actionsResponse{Identifier: identifier, Status: actions.StatusSuccess, Results: results}
	failed := 0
	for _, res := range results {
		if res.Status != actions.StatusSuccess {
			failed++
		}
	}
	resp.Message = fmt.Sprintf("%d of %d runs succeeded", len(results)-failed, len(results))
	if failed > 0 {
		resp.Status = actions.StatusFailed
	}
	writeJSON(w, http.StatusOK, resp)
}

// parameterSet decodes one parameter object. A string "data" (post data's
// payload, possibly megabytes) is kept as the bytes of its text: one copy,
// not a string and then bytes.
func parameterSet(raw jsontext.Value) (map[string]any, error) {
	var fields map[string]jsontext.Value
	if err := jsonv2.Unmarshal(raw, &fields); err != nil {
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "parameters: %v", err)
	}
	set := make(map[string]any, len(fields))
	for k, v := range fields {
		if k == "data" && v.Kind() == '"' {
			b, err := jsontext.AppendUnquote(make([]byte, 0, len(v)), v)
			if err != nil {
				return nil, soarkafka.Errorf(soarkafka.EINVALID, "parameters: data: %v", err)
			}
			set[k] = b
			continue
		}
		var x any
		if err := jsonv2.Unmarshal(v, &x); err != nil {
			return nil, soarkafka.Errorf(soarkafka.EINVALID, "parameters: %s: %v", k, err)
		}
		set[k] = x
	}
	return set, nil
}

// parameterSets reads parameters as one object or a list of objects (the
// app-run document's form); absent means one empty set.
func parameterSets(raw jsontext.Value) (sets []map[string]any, list bool, err error) {
	switch raw.Kind() {
	case 0, 'n':
		return []map[string]any{{}}, false, nil
	case '{':
		one, err := parameterSet(raw)
		if err != nil {
			return nil, false, err
		}
		return []map[string]any{one}, false, nil
	}
	if err := jsonv2.Unmarshal(raw, &sets); err != nil {
		return nil, false, soarkafka.Errorf(soarkafka.EINVALID, "parameters must be an object or a list of objects")
	}
	if len(sets) == 0 {
		return nil, false, soarkafka.Errorf(soarkafka.EINVALID, "parameters is an empty list; give at least one parameter set ({} for none)")
	}
	for i := range sets {
		if sets[i] == nil {
			sets[i] = map[string]any{}
		}
	}
	return sets, true, nil
}
