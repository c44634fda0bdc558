package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/actions"
	"github.com/soarkafka/soarkafka/assets"
)

// FuzzActionRequest feeds POST /v1/actions/{identifier} bodies, ours and
// the SOAR app-run document, through what runAction does before it runs
// the action: the body decoding, the parameter sets, the inline asset
// configuration, the asset_id, and the action's own parameter decoder. The
// action itself is not run: an inline configuration names any host, and
// fuzz input must never reach a dial.
func FuzzActionRequest(f *testing.F) {
	for _, seed := range []struct {
		identifier string
		body       string
	}{
		{actions.TestConnectivity, `{"asset":"prod"}`},
		{actions.TestConnectivity, `{"config":{"hosts":"127.0.0.1:9092","topic":"alerts"},"parameters":{}}`},
		{actions.TestConnectivity, `{"asset":"prod","config":{}}`},
		{actions.PostData, `{"asset":"prod","parameters":{"data_type":"string","data":"hello","topic":"alerts","timeout":30}}`},
		{actions.PostData, `{"asset":"prod","parameters":{"data_type":"JSON","data":"[{\"a\":1},{\"b\":2}]","topic":"alerts","key":"k","headers":{"h":"v"},"partition":"2","timestamp":"2026-11-23T10:00:00Z","json_format":"compact"}}`},
		{actions.PostData, `{"asset":"prod","parameters":{"data_type":"json","data":{"a":[1,2]},"topic":"a b","timeout":-1,"partition":1.5,"timestamp":1e20,"headers":{"h":1}}}`},
		{actions.PostData, `{"asset":"prod","parameters":{"data":"\ud800 \u00e9 \"q\" \\ \n","data_type":"string","topic":"t"}}`},
		{actions.OnPoll, `{"asset":"prod","parameters":{"poll_now":"true","artifact_count":"10","container_count":0,"start_time":1700000000000}}`},
		{actions.OnPoll, `{"asset":"prod","parameters":{"poll_now":"maybe","artifact_count":0,"end_time":"soon"}}`},
		{actions.OnPoll, `{"action":"on poll","identifier":"on_poll","config":{"hosts":"h:1","topic":"t","appname":"kafka","directory":"/opt/x"},"asset_id":7,"is_poll_now":true,"parameters":[{"artifact_count":5},null,{}]}`},
		{actions.PostData, `{"action":"post data","identifier":"post_data","config":{"hosts":"h:1","topic":"t"},"asset_id":"12","parameters":[{"data_type":"string","data":"a","topic":"t"},{"data_type":"string","data":"b","topic":"u"}]}`},
		{actions.PostData, `{"identifier":"test_connectivity","asset":"prod"}`},
		{actions.OnPoll, `{"config":{"hosts":"h:1","topic":"t"},"asset_id":-1}`},
		{actions.OnPoll, `{"config":{"hosts":"h:1","topic":"t"},"asset_id":"a/b"}`},
		{actions.OnPoll, `{"config":{"hosts":"h:1","topic":"t"},"asset_id":[1]}`},
		{actions.PostData, `{"asset":"prod","parameters":[]}`},
		{actions.PostData, `{"asset":"prod","parameters":[1,"x"]}`},
		{actions.PostData, `{"asset":"prod","parameters":"data"}`},
		{actions.PostData, `{"asset":"prod","parameters":{"data":"a","data":"b"}}`},
		{actions.PostData, `{"asset":"prod","parameters":{"data":"a"}} {}`},
		{actions.PostData, `{"asset":5}`},
		{"no_such_action", `{"asset":"prod"}`},
		{actions.PostData, ``}, {actions.PostData, `   `}, {actions.PostData, `{`}, {actions.PostData, "{\"asset\":\"\xff\"}"},
	} {
		f.Add(seed.identifier, []byte(seed.body))
	}
	runner := actions.NewRunner(slog.New(slog.DiscardHandler)) // Check only: it runs no action here
	f.Cleanup(runner.Close)
	f.Fuzz(func(t *testing.T, identifier string, body []byte) {
		if err := runner.Check(identifier); err != nil {
			if soarkafka.ErrorCode(err) != soarkafka.ENOTFOUND {
				t.Fatalf("Check(%q) = %v, want not_found", identifier, err)
			}
			return
		}
		req := actionRequest{Parameters: rawParams{in: body}}
		if err := unmarshalBody(body, &req); err != nil {
			wantInvalid(t, "body", err)
			return
		}
		sets, list, err := req.Parameters.sets()
		if err != nil {
			wantInvalid(t, "parameters", err)
			return
		}
		if len(sets) == 0 {
			t.Fatalf("%s: no parameter set and no error", body)
		}
		if req.Config != nil {
			if _, err := assets.Decode(req.Config, assets.DecodeOptions{IgnoreUnknown: true}); err != nil {
				wantInvalid(t, "config", err)
			}
			if _, err := soarAssetID(req.AssetID); err != nil {
				wantInvalid(t, "asset_id", err)
			}
		}
		decoded := make([]actions.Params, len(sets))
		for i, set := range sets {
			p, err := runner.Decode(identifier, set, nil)
			if err != nil {
				wantInvalid(t, fmt.Sprintf("parameter set %d", i), err)
				var e *soarkafka.Error
				errors.As(err, &e)
				for _, fe := range e.Fields {
					if _, given := set.Get(fe.Field); !given && !slices.Contains([]string{"data_type", "data", "topic"}, fe.Field) {
						t.Errorf("parameter set %d: field error %q names a parameter that was not given and is not required", i, fe)
					}
				}
				continue
			}
			decoded[i] = p
		}
		checkDataParameter(t, body, decoded, list)
	})
}

// checkDataParameter checks that a string "data" parameter, which sets
// unquotes itself into a buffer, holds what a JSON decoder makes of it.
// sets are the decoded parameter sets, nil where a set was refused.
func checkDataParameter(t *testing.T, body []byte, sets []actions.Params, list bool) {
	t.Helper()
	var doc struct {
		Parameters json.RawMessage `json:"parameters"`
	}
	if json.Unmarshal(body, &doc) != nil || !utf8.Valid(body) {
		return
	}
	var objects []map[string]json.RawMessage
	if list {
		var elems []map[string]json.RawMessage
		if json.Unmarshal(doc.Parameters, &elems) != nil {
			return
		}
		objects = elems
	} else {
		var one map[string]json.RawMessage
		if json.Unmarshal(doc.Parameters, &one) != nil {
			return
		}
		objects = []map[string]json.RawMessage{one}
	}
	if len(objects) != len(sets) {
		t.Fatalf("%s: %d parameter sets, the body has %d", body, len(sets), len(objects))
	}
	for i, obj := range objects {
		raw, ok := obj["data"]
		if !ok || len(raw) == 0 || raw[0] != '"' {
			continue
		}
		var want string
		if json.Unmarshal(raw, &want) != nil {
			continue
		}
		p, ok := sets[i].(*actions.PostDataParams)
		if !ok {
			continue // another action's, or refused
		}
		if got := p.Data.Bytes(); string(got) != want {
			t.Fatalf("%s: parameter set %d: data %q, want %q", body, i, got, want)
		}
	}
}

// wantInvalid fails unless err is an invalid *soarkafka.Error: anything
// else would be a 5xx.
func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	var e *soarkafka.Error
	if !errors.As(err, &e) || e.Code != soarkafka.EINVALID {
		t.Fatalf("%s: error %v (%T, code %q) is not an invalid *soarkafka.Error", what, err, err, soarkafka.ErrorCode(err))
	}
	if e.Message == "" && len(e.Fields) == 0 {
		t.Fatalf("%s: error with no message", what)
	}
}
