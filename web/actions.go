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

	if err := bodyText("asset", req.Asset); err != nil {
		h.bufs.put(body)
		writeError(w, r, h.opts.Logger, err)
		return
	}
	sets, list, err := req.Parameters.sets()
	if err == nil && req.IsPollNow && identifier == actions.OnPoll {
		for i, set := range sets {
			if _, given := set.Get("poll_now"); !given {
				sets[i] = append(set, actions.Field{Name: "poll_now", Value: jsontext.Value("true")})
			}
		}
	}
	var params []actions.Params
	if err == nil {
		params, err = h.decodeParams(identifier, sets, list)
	}
	// Nothing refers to the body past this point: the parameters are
	// decoded into values of their own.
	h.bufs.put(body)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	defer func() {
		for _, p := range params {
			p.Release()
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
	for _, p := range params {
		res, err := h.opts.Runner.Run(r.Context(), target, p)
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

// rawParams is the parameters member of an action request, decoded in the
// same pass as the body: each parameter object's values are kept as slices
// of the body instead of copies (post data's parameters carry megabytes),
// and turned into values by sets. Reading the parameters once as a whole
// and again member by member cost a pass over a large data string.
type rawParams struct {
	in   []byte        // the whole body, set before decoding
	kind jsontext.Kind // of the parameters value; 0 when absent
	// objects holds the parameter objects: the one object, or one per
	// list element (a null element: no fields).
	objects []paramFields
	bad     bool // a list element is neither an object nor null
}

// UnmarshalJSONFrom reads the parameters value: an object, a list of
// objects, or anything else, which sets refuses.
func (p *rawParams) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	p.kind = dec.PeekKind()
	switch p.kind {
	case '{':
		f := paramFields{in: p.in}
		if err := f.UnmarshalJSONFrom(dec); err != nil {
			return err
		}
		p.objects = []paramFields{f}
		return nil
	case '[':
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		for dec.PeekKind() != ']' {
			switch dec.PeekKind() {
			case '{':
				f := paramFields{in: p.in}
				if err := f.UnmarshalJSONFrom(dec); err != nil {
					return err
				}
				p.objects = append(p.objects, f)
			case 'n':
				if _, err := dec.ReadToken(); err != nil {
					return err
				}
				p.objects = append(p.objects, paramFields{})
			default:
				p.bad = true
				if err := dec.SkipValue(); err != nil {
					return err
				}
			}
		}
		_, err := dec.ReadToken()
		return err
	}
	return dec.SkipValue()
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

// sets returns the parameter sets, their values slices of the body: one
// object, or a list of objects (the SOAR app-run document's form); absent
// means one empty set.
func (p rawParams) sets() (sets []actions.Fields, list bool, err error) {
	notObjects := soarkafka.Errorf(soarkafka.EINVALID, "parameters must be an object or a list of objects")
	switch p.kind {
	case 0, 'n':
		return []actions.Fields{nil}, false, nil
	case '{', '[':
		if p.bad {
			return nil, false, notObjects
		}
		if p.kind == '[' && len(p.objects) == 0 {
			return nil, false, soarkafka.Errorf(soarkafka.EINVALID, "parameters is an empty list; give at least one parameter set ({} for none)")
		}
		for _, f := range p.objects {
			sets = append(sets, f.fields)
		}
		return sets, p.kind == '[', nil
	}
	return nil, false, notObjects
}

// decodeParams decodes every parameter set before any runs, so that a
// list with one bad set runs none. In a list, a bad field is named with
// its set's index: parameters[1].topic.
func (h *Handler) decodeParams(identifier string, sets []actions.Fields, list bool) ([]actions.Params, error) {
	out := make([]actions.Params, 0, len(sets))
	for i, set := range sets {
		p, err := h.opts.Runner.Decode(identifier, set, payloadBufs{h.bufs})
		if err != nil {
			for _, done := range out {
				done.Release()
			}
			var e *soarkafka.Error
			if list && errors.As(err, &e) && len(e.Fields) > 0 {
				fields := make([]soarkafka.FieldError, len(e.Fields))
				for j, f := range e.Fields {
					fields[j] = soarkafka.FieldError{Field: fmt.Sprintf("parameters[%d].%s", i, f.Field), Message: f.Message}
				}
				err = &soarkafka.Error{Code: e.Code, Message: fmt.Sprintf("%s (parameter set %d of %d)", e.Message, i+1, len(sets)), Fields: fields}
			}
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// payloadBufs lends post data's payload buffers from the body pool.
type payloadBufs struct{ *bufPool }

func (b payloadBufs) Get(n int) []byte { return b.get(n) }
func (b payloadBufs) Put(p []byte)     { b.put(p) }

// paramFields are the members of one parameter object, each value a slice
// of the input.
type paramFields struct {
	in     []byte
	fields actions.Fields
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
		p.fields = append(p.fields, actions.Field{Name: name, Value: sliceOf(p.in, v, dec.InputOffset())})
	}
	_, err := dec.ReadToken()
	return err
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
	return "", soarkafka.Errorf(soarkafka.EINVALID, "asset_id must be a number or a string, got %s", soarkafka.JSONType(v))
}
