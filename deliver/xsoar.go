package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/soarkafka/soarkafka/ingest"
)

// xsoarWebhook delivers to a Cortex XSOAR Generic Webhook: one incident
// per artifact, {name, type, occurred, rawJson}, with basic auth. The
// webhook has no de-duplication and nothing to list, so a row whose
// outcome is unknown is sent again whole: delivery to it is at least
// once.
type xsoarWebhook struct {
	c *client
	w *Worker
}

// xsoarIncident is the body the Generic Webhook takes.
type xsoarIncident struct {
	Name     string `json:"name"`
	Type     string `json:"type,omitempty"`
	Occurred string `json:"occurred"`
	// RawJSON is the artifact and its container as JSON text, for the
	// incident's mapping.
	RawJSON string `json:"rawJson"`
}

func (x *xsoarWebhook) send(ctx context.Context, r ingest.OutboxRow, c *ingest.StoredContainer, arts []ingest.StoredArtifact, _ bool) (int64, error) {
	occurred := c.CreatedAt
	if !r.MessageTime.IsZero() {
		occurred = r.MessageTime
	}
	label := c.Label
	var head struct {
		Label string `json:"label"`
	}
	if json.Unmarshal(c.Body, &head) == nil && head.Label == "" {
		label = x.w.cfg.DeliveryLabel()
	}
	container := map[string]any{"id": c.ID, "source_data_identifier": ContainerSDI(c.ID), "body": c.Body}
	send := func(name string, artifact any) error {
		raw, err := json.Marshal(map[string]any{"container": container, "artifact": artifact})
		if err != nil {
			return &failure{kind: "dead", msg: fmt.Sprintf("encode the incident of container %d: %v", c.ID, err)}
		}
		inc := xsoarIncident{Name: name, Type: label, Occurred: occurred.UTC().Format(time.RFC3339Nano), RawJSON: string(raw)}
		a, err := x.c.do(ctx, http.MethodPost, x.c.base, inc)
		if err != nil {
			return err
		}
		if a.status < 200 || a.status > 299 {
			return x.c.refusal(http.MethodPost, x.c.base, a)
		}
		return nil
	}
	if len(arts) == 0 {
		return 0, send(c.Name, nil)
	}
	for _, a := range arts {
		var head struct {
			Name string `json:"name"`
		}
		name := c.Name
		if json.Unmarshal(a.Body, &head) == nil && head.Name != "" {
			name = head.Name
		}
		art := map[string]any{"id": a.ID, "source_data_identifier": a.SourceDataIdentifier, "body": a.Body}
		if err := send(name, art); err != nil {
			return 0, err
		}
	}
	return 0, nil
}
