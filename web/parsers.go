package web

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/audit"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/produce"
	"github.com/soarkafka/soarkafka/soar"
)

func (h *Handler) listParsers(w http.ResponseWriter, r *http.Request) {
	views, err := h.opts.Parsers.List(r.Context())
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(views), "data": views})
}

// parserInput reads a parser from a JSON body, or from a multipart form
// with the source uploaded as a .go file in the field "file" (or "source")
// and name and description as form fields.
func (h *Handler) parserInput(r *http.Request) (parsers.Input, error) {
	in, err := h.readParserInput(r)
	if err != nil {
		return in, err
	}
	return in, bodyText("name", in.Name, "description", in.Description, "source", in.Source)
}

func (h *Handler) readParserInput(r *http.Request) (parsers.Input, error) {
	var in parsers.Input
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return in, decodeJSON(r, h.opts.MaxBodyBytes, &in)
	}
	if err := r.ParseMultipartForm(h.opts.MaxBodyBytes); err != nil {
		if strings.Contains(err.Error(), "too large") {
			return in, tooLarge(h.opts.MaxBodyBytes)
		}
		return in, soarkafka.Errorf(soarkafka.EINVALID, "multipart form: %v", err)
	}
	in.Name = r.FormValue("name")
	in.Description = r.FormValue("description")
	for _, field := range []string{"file", "source"} {
		f, _, err := r.FormFile(field)
		if err != nil {
			continue
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return in, soarkafka.Errorf(soarkafka.EINVALID, "multipart form: %s: %v", field, err)
		}
		in.Source = string(b)
		return in, nil
	}
	in.Source = r.FormValue("source")
	return in, nil
}

func (h *Handler) createParser(w http.ResponseWriter, r *http.Request) {
	in, err := h.parserInput(r)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	v, err := h.opts.Parsers.Create(r.Context(), in)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	h.record(r, h.auditEvent(r, audit.KindParser, v.Name, audit.ActionCreate, v.Version, map[string]any{"version": v.Version}))
	w.Header().Set("Location", "/v1/parsers/"+v.Name)
	writeJSON(w, http.StatusCreated, v)
}

func (h *Handler) getParser(w http.ResponseWriter, r *http.Request) {
	v, err := h.opts.Parsers.Get(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) updateParser(w http.ResponseWriter, r *http.Request) {
	in, err := h.parserInput(r)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	v, err := h.opts.Parsers.Update(r.Context(), chi.URLParam(r, "name"), in)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	// The version number, not the source: the versions route keeps that.
	h.record(r, h.auditEvent(r, audit.KindParser, v.Name, audit.ActionUpdate, v.Version, map[string]any{"version": v.Version}))
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) deleteParser(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := h.opts.Parsers.Delete(r.Context(), name); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	h.record(r, h.auditEvent(r, audit.KindParser, name, audit.ActionDelete, 0, nil))
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) parserVersions(w http.ResponseWriter, r *http.Request) {
	vs, err := h.opts.Parsers.Versions(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(vs), "data": vs})
}

func (h *Handler) parserVersion(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(chi.URLParam(r, "version"), 10, 64)
	if err != nil || n < 1 {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EINVALID, "version must be a number from 1"))
		return
	}
	v, err := h.opts.Parsers.Version(r.Context(), chi.URLParam(r, "name"), n)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// testRequest is a playground request: a parser (source, or the name of a
// bundled or stored parser) and either messages given here or a sample of
// an asset's topic read live (nothing committed).
type testRequest struct {
	Source   string         `json:"source"`
	Parser   string         `json:"parser"`
	Topic    string         `json:"topic"`
	Messages []messageInput `json:"messages"`
	Asset    string         `json:"asset"`
	Sample   *sampleInput   `json:"sample"`
}

type sampleInput struct {
	From  string `json:"from"`
	Count int    `json:"count"`
}

// messageInput is one playground message: its value as text or as any JSON
// (sent compact), and optionally its coordinates, key, headers and time.
type messageInput struct {
	Value     any               `json:"value"`
	Key       string            `json:"key"`
	Partition int32             `json:"partition"`
	Offset    *int64            `json:"offset"`
	Headers   map[string]string `json:"headers"`
	Timestamp any               `json:"timestamp"`
}

func (h *Handler) testParser(w http.ResponseWriter, r *http.Request) {
	var req testRequest
	if err := decodeJSON(r, h.opts.MaxBodyBytes, &req); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	if err := bodyText("parser", req.Parser, "asset", req.Asset); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	in := parsers.TestInput{Name: req.Parser, Source: req.Source, Topic: req.Topic, Asset: req.Asset}
	switch {
	case req.Asset != "" && len(req.Messages) > 0:
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EINVALID, "give messages or asset with sample, not both"))
		return
	case req.Asset != "":
		if req.Sample != nil {
			in.From, in.Count = req.Sample.From, req.Sample.Count
		}
	default:
		msgs, err := playgroundMessages(req.Messages, in.Topic)
		if err != nil {
			writeError(w, r, h.opts.Logger, err)
			return
		}
		in.Messages = msgs
	}
	out, err := h.opts.Parsers.Test(r.Context(), in)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func playgroundMessages(in []messageInput, topic string) ([]soar.Message, error) {
	if len(in) == 0 {
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "give messages (a list of {\"value\": ...}) or asset (to sample its topic)")
	}
	msgs := make([]soar.Message, len(in))
	for i, m := range in {
		var value string
		switch v := m.Value.(type) {
		case string:
			value = v
		case nil:
		default:
			b, err := jsonCompact(v)
			if err != nil {
				return nil, soarkafka.Errorf(soarkafka.EINVALID, "messages[%d].value: %v", i, err)
			}
			value = b
		}
		offset := int64(i)
		if m.Offset != nil {
			offset = *m.Offset
		}
		msg := soar.Message{Topic: topic, Partition: m.Partition, Offset: offset, Value: []byte(value), Message: value, Timestamp: time.Now().UTC()}
		if m.Key != "" {
			msg.Key = []byte(m.Key)
		}
		for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
			msg.Headers = append(msg.Headers, soar.Header{Key: k, Value: m.Headers[k]})
		}
		if m.Timestamp != nil {
			ts, err := produce.ParseTimestamp(m.Timestamp)
			if err != nil {
				return nil, soarkafka.Errorf(soarkafka.EINVALID, "messages[%d].timestamp: %v", i, err)
			}
			msg.Timestamp = ts
		}
		msgs[i] = msg
	}
	return msgs, nil
}

// jsonCompact encodes v as compact JSON, without HTML escaping.
func jsonCompact(v any) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}
