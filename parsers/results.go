package parsers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/soar"
)

// errResult marks results a parser returned that cannot be stored: the
// parser's failure on that batch, split like any other.
var errResult = errors.New("results cannot be stored")

// IsParserFailure reports whether err, from Bound.Containers, is the
// parser's failure on the batch (an error or panic of the parser, its
// deadline, results that cannot be stored) rather than the server's own.
func IsParserFailure(err error) bool {
	return DescribeError(err) != nil || errors.Is(err, errResult)
}

// containersFromJSON turns a parser's results (the JSON list a sandbox
// worker returns) into the containers to store. An artifact without source_data_identifier
// gets one from the SHA-256 of its body (artifactID): a replay of the
// same message then finds it a duplicate, provided the parser is
// deterministic. An error wraps errResult.
//
// It reads the list in one pass and the bodies are slices of results, not
// copies: results is a frame of its own for every parser call, and
// decoding twice and copying showed in a sandboxed poll's CPU profile
// (docs/performance.md).
func containersFromJSON(results []byte) ([]ingest.Container, error) {
	r := resultReader{in: results, dec: jsontext.NewDecoder(bytes.NewReader(results),
		jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))}
	out, err := r.results()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errResult, err)
	}
	return out, nil
}

// resultReader walks the results list with a token decoder, slicing each
// body out of in.
type resultReader struct {
	in  []byte
	dec *jsontext.Decoder
}

func (r *resultReader) results() ([]ingest.Container, error) {
	if err := r.open('['); err != nil {
		return nil, fmt.Errorf("want a list of {container, artifacts}: %v", err)
	}
	var out []ingest.Container
	for i := 0; r.dec.PeekKind() != ']'; i++ {
		c, err := r.result()
		if err != nil {
			return nil, fmt.Errorf("result %d: %v", i, err)
		}
		out = append(out, c)
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return nil, err
	}
	return out, nil
}

// result reads one {"container": {...}, "artifacts": [...]}.
func (r *resultReader) result() (ingest.Container, error) {
	var c ingest.Container
	if err := r.open('{'); err != nil {
		return c, err
	}
	seen := false
	for r.dec.PeekKind() != '}' {
		name, err := r.dec.ReadValue()
		if err != nil {
			return c, err
		}
		switch string(name) {
		case `"container"`:
			body, sdi, err := r.object()
			if err != nil {
				return c, fmt.Errorf("container: %v", err)
			}
			c.Body, c.SourceDataIdentifier, seen = body, sdi, true
		case `"artifacts"`:
			if r.dec.PeekKind() == 'n' {
				_, err = r.dec.ReadToken()
			} else {
				c.Artifacts, err = r.artifacts()
			}
			if err != nil {
				return c, err
			}
		default:
			if err := r.dec.SkipValue(); err != nil {
				return c, err
			}
		}
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return c, err
	}
	if !seen {
		return c, fmt.Errorf("no container")
	}
	return c, nil
}

func (r *resultReader) artifacts() ([]ingest.Artifact, error) {
	if err := r.open('['); err != nil {
		return nil, fmt.Errorf("artifacts: %v", err)
	}
	var arts []ingest.Artifact
	for j := 0; r.dec.PeekKind() != ']'; j++ {
		body, sdi, err := r.object()
		if err != nil {
			return nil, fmt.Errorf("artifact %d: %v", j, err)
		}
		arts = append(arts, ingest.Artifact{SourceDataIdentifier: artifactID(sdi, body), Body: body})
	}
	_, err := r.dec.ReadToken()
	return arts, err
}

// object reads one JSON object and returns it as a slice of the input,
// with its top-level source_data_identifier.
func (r *resultReader) object() (json.RawMessage, string, error) {
	if k := r.dec.PeekKind(); k != '{' {
		return nil, "", fmt.Errorf("is not an object")
	}
	// The object starts at the first byte past the member's colon.
	start := int(r.dec.InputOffset())
	for start < len(r.in) && strings.IndexByte(" \t\r\n:,", r.in[start]) >= 0 {
		start++
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return nil, "", err
	}
	sdi := ""
	for r.dec.PeekKind() != '}' {
		name, err := r.dec.ReadValue()
		if err != nil {
			return nil, "", err
		}
		if string(name) != `"source_data_identifier"` {
			if err := r.dec.SkipValue(); err != nil {
				return nil, "", err
			}
			continue
		}
		tok, err := r.dec.ReadToken()
		if err != nil {
			return nil, "", err
		}
		switch tok.Kind() {
		case '"':
			sdi = tok.String()
		case 'n':
		default:
			return nil, "", fmt.Errorf("source_data_identifier is not a string")
		}
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return nil, "", err
	}
	end := int(r.dec.InputOffset())
	return json.RawMessage(r.in[start:end:end]), sdi, nil
}

// open reads the opening delimiter kind.
func (r *resultReader) open(kind jsontext.Kind) error {
	tok, err := r.dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != kind {
		return fmt.Errorf("want %v, got %v", kind, tok.Kind())
	}
	return nil
}

// containersOf turns a bundled parser's results into the containers to
// store, encoding each body as the sandbox encodes results, with the same
// rules as containersFromJSON.
func containersOf(results []soar.Result) ([]ingest.Container, error) {
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
			c.Artifacts[j] = ingest.Artifact{SourceDataIdentifier: artifactID(sdi, body), Body: body}
		}
		out[i] = c
	}
	return out, nil
}

// artifactID is an artifact's source_data_identifier: the parser's, or
// when it gave none "sha256:" and the hex SHA-256 of the body's bytes as the
// results hold them (docs/on-poll.md, "The artifact id rule"). It is our
// rule, not SOAR's: SOAR's own artifact hash is not SHA-256.
func artifactID(sdi string, body []byte) string {
	if sdi != "" {
		return sdi
	}
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}
