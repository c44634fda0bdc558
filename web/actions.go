package web

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

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
	Parameters rawParams      `json:"parameters"`
	Action     string         `json:"action"`
	Identifier string         `json:"identifier"`
	AssetID    any            `json:"asset_id"`
	// IsPollNow is the SOAR app-run document's flag for a poll now.
	IsPollNow bool `json:"is_poll_now"`
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
	body, err := readBody(r, h.opts.MaxBodyBytes, h.bufs)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	req := actionRequest{Parameters: rawParams{in: body}}
	err = unmarshalBody(body, &req)
	if err != nil {
		h.bufs.put(body)
		writeError(w, r, h.opts.Logger, err)
		return
	}
	if req.Identifier != "" && req.Identifier != identifier {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EINVALID,
			"identifier %q in the body differs from %q in the URL", req.Identifier, identifier))
		return
	}

	paramSets, list, err := req.Parameters.sets(h.bufs)
	// Nothing refers to the body past this point: the parameters are
	// decoded into values of their own.
	h.bufs.put(body)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	defer func() {
		for _, set := range paramSets {
			if b, ok := set["data"].([]byte); ok {
				h.bufs.put(b)
			}
		}
	}()

	var target actions.Target
	switch {
	case req.Asset != "" && req.Config != nil:
		err = soarkafka.Errorf(soarkafka.EINVALID, "give either asset (a stored asset's name) or config (an inline configuration), not both")
	case req.Asset != "":
		target.Asset = req.Asset
		target.Config, _, err = h.opts.Assets.Resolve(r.Context(), req.Asset)
	case req.Config != nil:
		target.Config, err = assets.Decode(req.Config, assets.DecodeOptions{IgnoreUnknown: true})
		if err == nil {
			target.SOARAssetID, err = soarAssetID(req.AssetID)
		}
	default:
		err = soarkafka.Errorf(soarkafka.EINVALID, "missing asset: give asset (a stored asset's name) or config (an inline asset configuration)")
	}
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}

	var results []*actions.Result
	for _, params := range paramSets {
		if req.IsPollNow && identifier == actions.OnPoll {
			if _, given := params["poll_now"]; !given {
				params["poll_now"] = true
			}
		}
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

// rawParams is the parameters member of an action request, kept as a slice
// of the request body instead of a copy (post data's parameters carry
// megabytes), and decoded by sets.
type rawParams struct {
	in    []byte // the whole body, set before decoding
	value []byte // the parameters value, a slice of in
}

// UnmarshalJSONFrom keeps the value as a slice of the input when the decoder
// reads straight from it (as json.Unmarshal does), else as a copy.
func (p *rawParams) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	p.value = sliceOf(p.in, v, dec.InputOffset())
	return nil
}

// sliceOf returns v as the slice of in that ends at end, if v is that very
// memory (no copy), else a copy of v: a decoder's value is only valid until
// its next read.
func sliceOf(in, v []byte, end int64) []byte {
	if len(v) > 0 && end <= int64(len(in)) && end >= int64(len(v)) && &in[end-int64(len(v))] == &v[0] {
		return in[end-int64(len(v)) : end : end]
	}
	return bytes.Clone(v)
}

// sets decodes the parameters: one object, or a list of objects (the SOAR
// app-run document's form); absent means one empty set.
func (p rawParams) sets(bufs *bufPool) (sets []map[string]any, list bool, err error) {
	raw := jsontext.Value(p.value)
	switch raw.Kind() {
	case 0, 'n':
		return []map[string]any{{}}, false, nil
	case '{':
		one, err := parameterSet(raw, bufs)
		if err != nil {
			return nil, false, err
		}
		return []map[string]any{one}, false, nil
	case '[':
		var elems []rawParams
		if err := jsonv2.Unmarshal(raw, &elems); err != nil {
			return nil, false, soarkafka.Errorf(soarkafka.EINVALID, "parameters must be an object or a list of objects")
		}
		if len(elems) == 0 {
			return nil, false, soarkafka.Errorf(soarkafka.EINVALID, "parameters is an empty list; give at least one parameter set ({} for none)")
		}
		for _, e := range elems {
			v := jsontext.Value(e.value)
			switch v.Kind() {
			case 'n':
				sets = append(sets, map[string]any{})
			case '{':
				one, err := parameterSet(v, bufs)
				if err != nil {
					return nil, false, err
				}
				sets = append(sets, one)
			default:
				return nil, false, soarkafka.Errorf(soarkafka.EINVALID, "parameters must be an object or a list of objects")
			}
		}
		return sets, true, nil
	}
	return nil, false, soarkafka.Errorf(soarkafka.EINVALID, "parameters must be an object or a list of objects")
}

// paramFields are the members of one parameter object, each value a slice
// of the input.
type paramFields struct {
	in     []byte
	names  []string
	values [][]byte
}

func (p *paramFields) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if tok, err := dec.ReadToken(); err != nil {
		return err
	} else if tok.Kind() != '{' {
		return errors.New("not an object")
	}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		name := tok.String() // a token is void after the decoder's next call
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		p.names = append(p.names, name)
		p.values = append(p.values, sliceOf(p.in, v, dec.InputOffset()))
	}
	_, err := dec.ReadToken()
	return err
}

// parameterSet decodes one parameter object. A string "data" (post data's
// payload, possibly megabytes) is unquoted once into a buffer from bufs and
// kept as bytes; the caller returns it to bufs when the action is done.
func parameterSet(raw jsontext.Value, bufs *bufPool) (map[string]any, error) {
	fields := paramFields{in: raw}
	if err := jsonv2.Unmarshal(raw, &fields); err != nil {
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "parameters: %v", err)
	}
	set := make(map[string]any, len(fields.names))
	for i, k := range fields.names {
		v := jsontext.Value(fields.values[i])
		if k == "data" && v.Kind() == '"' {
			b, err := jsontext.AppendUnquote(bufs.get(len(v))[:0], v)
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

// soarAssetID reads the app-run document's asset_id: a SOAR sends a
// number, some tools a string.
func soarAssetID(v any) (string, error) {
	switch id := v.(type) {
	case nil:
		return "", nil
	case string:
		if strings.ContainsAny(id, "\x00/") || len(id) > 200 {
			return "", soarkafka.Errorf(soarkafka.EINVALID, "asset_id %q is not an asset id", id)
		}
		return id, nil
	case float64:
		if id != math.Trunc(id) || id < 0 {
			return "", soarkafka.Errorf(soarkafka.EINVALID, "asset_id %v is not an asset id (a whole number)", id)
		}
		return strconv.FormatInt(int64(id), 10), nil
	}
	return "", soarkafka.Errorf(soarkafka.EINVALID, "asset_id must be a number or a string, got %s", assets.JSONType(v))
}
