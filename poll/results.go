package poll

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/soar"
)

// errResult marks results a parser returned that cannot be stored: the
// parser's failure on that batch, split like any other.
var errResult = errors.New("results cannot be stored")

// resultJSON is one parser result as the engine encodes it.
type resultJSON struct {
	Container jsontext.Value   `json:"container"`
	Artifacts []jsontext.Value `json:"artifacts"`
}

type identified struct {
	SourceDataIdentifier *string `json:"source_data_identifier"`
}

// Containers turns a parser's results (the JSON list the engine returns)
// into the containers to store. An artifact without source_data_identifier
// gets the SHA-256 of its body, as SOAR gives one on save: a replay of the
// same message then finds it a duplicate, provided the parser is
// deterministic. An error wraps errResult.
func Containers(results []byte) ([]ingest.Container, error) {
	var rs []resultJSON
	if err := jsonv2.Unmarshal(results, &rs); err != nil {
		return nil, fmt.Errorf("%w: want a list of {container, artifacts}: %v", errResult, err)
	}
	out := make([]ingest.Container, len(rs))
	for i, r := range rs {
		if r.Container.Kind() != '{' {
			return nil, fmt.Errorf("%w: result %d: container is not an object", errResult, i)
		}
		var id identified
		if err := jsonv2.Unmarshal(r.Container, &id, jsonv2.RejectUnknownMembers(false)); err != nil {
			return nil, fmt.Errorf("%w: result %d: container source_data_identifier: %v", errResult, i, err)
		}
		c := ingest.Container{Body: json.RawMessage(r.Container), Artifacts: make([]ingest.Artifact, len(r.Artifacts))}
		if id.SourceDataIdentifier != nil {
			c.SourceDataIdentifier = *id.SourceDataIdentifier
		}
		for j, a := range r.Artifacts {
			if a.Kind() != '{' {
				return nil, fmt.Errorf("%w: result %d: artifact %d is not an object", errResult, i, j)
			}
			var aid identified
			if err := jsonv2.Unmarshal(a, &aid); err != nil {
				return nil, fmt.Errorf("%w: result %d: artifact %d source_data_identifier: %v", errResult, i, j, err)
			}
			sdi := ""
			if aid.SourceDataIdentifier != nil {
				sdi = *aid.SourceDataIdentifier
			}
			if sdi == "" {
				sum := sha256.Sum256(a)
				sdi = "sha256:" + hex.EncodeToString(sum[:])
			}
			c.Artifacts[j] = ingest.Artifact{SourceDataIdentifier: sdi, Body: json.RawMessage(a)}
		}
		out[i] = c
	}
	return out, nil
}

// ContainersOf turns a bundled parser's results into the containers to
// store, encoding each body as the sandbox encodes results, with the same
// rules as Containers.
func ContainersOf(results []soar.Result) ([]ingest.Container, error) {
	opts := sandbox.ResultOptions()
	out := make([]ingest.Container, len(results))
	for i, r := range results {
		body, err := jsonv2.Marshal(r.Container, opts)
		if err != nil {
			return nil, fmt.Errorf("%w: result %d: container: %v", errResult, i, err)
		}
		c := ingest.Container{SourceDataIdentifier: r.Container.SourceDataIdentifier, Body: body,
			Artifacts: make([]ingest.Artifact, len(r.Artifacts))}
		if c.SourceDataIdentifier == "" {
			c.SourceDataIdentifier, _ = r.Container.Extra["source_data_identifier"].(string)
		}
		for j, a := range r.Artifacts {
			body, err := jsonv2.Marshal(a, opts)
			if err != nil {
				return nil, fmt.Errorf("%w: result %d: artifact %d: %v", errResult, i, j, err)
			}
			sdi := a.SourceDataIdentifier
			if sdi == "" {
				sdi, _ = a.Extra["source_data_identifier"].(string)
			}
			if sdi == "" {
				sum := sha256.Sum256(body)
				sdi = "sha256:" + hex.EncodeToString(sum[:])
			}
			c.Artifacts[j] = ingest.Artifact{SourceDataIdentifier: sdi, Body: body}
		}
		out[i] = c
	}
	return out, nil
}
