package web

import (
	"net/http"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
)

// topicsRequest is the body of POST /v1/topics: an inline asset
// configuration as the SOAR app-run document carries it, and the topic to
// describe (every topic when empty).
type topicsRequest struct {
	inlineConfig
	Topic string `json:"topic"`
}

// inlineConfig is what the routes for an inline asset configuration take:
// the configuration as the SOAR app-run document carries it, and the SOAR
// asset's id.
type inlineConfig struct {
	Config  map[string]any `json:"config"`
	AssetID any            `json:"asset_id"`
}

// config checks the members, with the route's own field errors more,
// reporting every bad one at once, and decodes the configuration. stored
// says how to ask the same of a stored asset; needID makes asset_id
// required. It returns the asset id as soarAssetID reads it.
func (c inlineConfig) config(stored string, needID bool, more ...soarkafka.FieldError) (assets.Config, string, error) {
	id, bad := c.check(stored, needID)
	if bad = append(bad, more...); len(bad) > 0 {
		return assets.Config{}, "", &soarkafka.Error{Code: soarkafka.EINVALID, Message: "invalid request body", Fields: bad}
	}
	cfg, err := assets.Decode(c.Config, assets.DecodeOptions{IgnoreUnknown: true})
	return cfg, id, err
}

// check names the members that are missing or bad.
func (c inlineConfig) check(stored string, needID bool) (id string, bad []soarkafka.FieldError) {
	if c.Config == nil {
		bad = append(bad, soarkafka.FieldError{Field: "config", Message: "required: the asset configuration, as the SOAR app-run document's config (for a stored asset, " + stored + ")"})
	}
	id, err := soarAssetID(c.AssetID)
	switch {
	case err != nil:
		bad = append(bad, soarkafka.FieldError{Field: "asset_id", Message: err.Error()})
	case id == "" && needID:
		bad = append(bad, soarkafka.FieldError{Field: "asset_id", Message: "required: the SOAR asset's id, which an inline configuration's polls are kept under"})
	}
	return id, bad
}

// listTopics answers GET /v1/topics?asset=NAME[&topic=T]: the topics of a
// stored asset's cluster with their partitions' offsets.
func (h *Handler) listTopics(w http.ResponseWriter, r *http.Request) {
	q := queryParams{values: r.URL.Query()}
	name := q.values.Get("asset")
	if name == "" {
		q.bad("asset", "required: the name of a stored asset (for an inline configuration, POST /v1/topics with config)")
	}
	topic := q.values.Get("topic")
	if topic != "" {
		if msg := soarkafka.TopicNameProblem(topic); msg != "" {
			q.bad("topic", "%q is not a topic name: %s", topic, msg)
		}
	}
	if err := q.err(); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	cfg, _, err := h.opts.Assets.Resolve(r.Context(), name)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	h.writeTopics(w, r, cfg, topic)
}

// describeTopics answers POST /v1/topics: as GET, for an inline
// configuration.
func (h *Handler) describeTopics(w http.ResponseWriter, r *http.Request) {
	var req topicsRequest
	if err := decodeJSON(r, h.opts.MaxBodyBytes, &req); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	var bad []soarkafka.FieldError
	if req.Topic != "" {
		if msg := soarkafka.TopicNameProblem(req.Topic); msg != "" {
			bad = append(bad, soarkafka.FieldError{Field: "topic", Message: req.Topic + " is not a topic name: " + msg})
		}
	}
	cfg, _, err := req.config("GET /v1/topics?asset=NAME", false, bad...)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	h.writeTopics(w, r, cfg, req.Topic)
}

// writeTopics asks the asset's cluster, through the runner's access rules
// (allowed and denied hosts, allowed files), and answers.
func (h *Handler) writeTopics(w http.ResponseWriter, r *http.Request, cfg assets.Config, topic string) {
	if h.opts.Runner == nil {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EUNAVAILABLE, "topics are not available: this server runs no actions"))
		return
	}
	topics, err := h.opts.Runner.Access().Topics(r.Context(), cfg, topic, h.opts.Logger)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"topics": topics})
}
