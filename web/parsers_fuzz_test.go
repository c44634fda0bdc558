package web

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
)

// FuzzParserBody feeds POST/PUT /v1/parsers bodies (JSON or a multipart
// form) and POST /v1/parsers/test bodies through their decoding and the
// static checks of the source, which is what the server does with a
// parser before it runs one. The run itself (a sandbox worker, a process)
// is not fuzzed here. Decoding fails only with invalid or too_large; the
// checks fail only with a *sandbox.CheckError.
func FuzzParserBody(f *testing.F) {
	const src = "package p\nimport \"github.com/soarkafka/soarkafka/soar\"\nfunc ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) { return nil, nil }\n"
	for _, seed := range []struct {
		body      string
		multipart bool
	}{
		{`{"name":"mine","description":"d","source":` + quote(src) + `}`, false},
		{`{"name":"mine","source":"package p\nimport \"os\"\nfunc f() { go f() }\n"}`, false},
		{`{"name":"test","source":""}`, false},
		{`{"name":"-x","source":7}`, false},
		{`{"source":` + quote(src) + `,"messages":[{"value":"text","key":"k","partition":1,"offset":5,"headers":{"h":"v"},"timestamp":"2026-11-23T10:00:00Z"},{"value":{"a":[1]}},{"value":null,"timestamp":1e20}]}`, false},
		{`{"parser":"default","topic":"t","messages":[{"value":1,"timestamp":"yesterday"}]}`, false},
		{`{"parser":"default","messages":[]}`, false},
		{`{"parser":"default","messages":[{"headers":{"h":1}}]}`, false},
		{`{"asset":"prod","sample":{"from":"earliest","count":5}}`, false},
		{"--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nmine\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.go\"\r\n\r\n" + src + "\r\n--B--\r\n", true},
		{"--B\r\nContent-Disposition: form-data; name=\"source\"\r\n\r\npackage\r\n--B--\r\n", true},
		{"--B\r\n\r\n--B", true},
		{"", true}, {"", false}, {"{", false},
	} {
		f.Add([]byte(seed.body), seed.multipart)
	}
	h := &Handler{opts: Options{MaxBodyBytes: 64 << 10}}
	f.Fuzz(func(t *testing.T, body []byte, multipart bool) {
		req := httptest.NewRequest("POST", "/v1/parsers", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if multipart {
			req.Header.Set("Content-Type", "multipart/form-data; boundary=B")
		}
		in, err := h.parserInput(req)
		if err != nil {
			if c := soarkafka.ErrorCode(err); c != soarkafka.EINVALID && c != soarkafka.ETOOLARGE {
				t.Fatalf("%q: %v (code %q)", body, err, c)
			}
		} else {
			_ = soarkafka.NameProblem(in.Name)
			checkSource(t, in.Name+".go", in.Source)
		}
		if multipart {
			return
		}
		// The playground's request: its parser source and its messages.
		var tr testRequest
		if err := unmarshalBody(body, &tr); err != nil {
			wantInvalid(t, "test body", err)
			return
		}
		if tr.Source != "" {
			checkSource(t, "(source).go", tr.Source)
		}
		if tr.Asset == "" {
			msgs, err := playgroundMessages(tr.Messages, tr.Topic)
			if err != nil {
				wantInvalid(t, "messages", err)
			} else if len(msgs) != len(tr.Messages) {
				t.Fatalf("%q: %d messages, want %d", body, len(msgs), len(tr.Messages))
			}
		}
	})
}

// checkSource runs the static checks and checks their answer: nil, or a
// CheckError with at least one problem, each placed in the file checked.
func checkSource(t *testing.T, file, source string) {
	t.Helper()
	err := sandbox.Check(file, source)
	if err == nil {
		return
	}
	var ce *sandbox.CheckError
	if !errors.As(err, &ce) || len(ce.Problems) == 0 {
		t.Fatalf("Check(%q): %v (%T) is not a CheckError with problems", source, err, err)
	}
	lines := bytes.Count([]byte(source), []byte("\n")) + 1
	for _, p := range ce.Problems {
		if p.Pos.Filename != file || p.Pos.Line > lines || p.Message == "" {
			t.Fatalf("Check(%q): problem %v is not placed in %s (%d lines)", source, p, file, lines)
		}
	}
}

func quote(s string) string {
	b, _ := jsonCompact(s)
	return b
}
