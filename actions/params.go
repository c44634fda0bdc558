package actions

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/soarkafka/soarkafka"
)

// Field is one member of a parameter object as the request held it: its
// name and its JSON text. The web layer hands over slices of the request
// body (post data's data may be megabytes), so a Field is only valid while
// the body is.
type Field struct {
	Name  string
	Value jsontext.Value
}

// Fields is one parameter set as given, its members in order.
type Fields []Field

// Get returns the value of the member named name, and whether it is there.
func (fs Fields) Get(name string) (jsontext.Value, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

// Params is one parameter set decoded for one action: a
// *TestConnectivityParams, *OnPollParams or *PostDataParams. Release gives
// back what the parameters hold (post data's payload buffer); call it when
// the action is done.
type Params interface {
	// Identifier is the action the parameters are for.
	Identifier() string
	// Echo is what the action's result repeats of the parameters.
	Echo() Echo
	Release()
}

// Echo is the parameters as a result repeats them (its "parameter"
// member): each given member's JSON text, except a long post data payload,
// which is cut (see echoLimit).
type Echo map[string]jsontext.Value

// echo copies the fields into an Echo; their values are slices of a body
// that is reused once the request ends.
func echo(fields Fields) Echo {
	e := make(Echo, len(fields))
	for _, f := range fields {
		e[f.Name] = f.Value.Clone()
	}
	return e
}

// Buffers lends the memory a large string parameter is unquoted into;
// nil allocates.
type Buffers interface {
	Get(n int) []byte
	Put(b []byte)
}

// Decode decodes one parameter set for the action identifier, in one pass
// over its members, reporting every bad member at once as an EINVALID
// *soarkafka.Error with a FieldError each. Members an action does not know
// are kept in the echo and otherwise ignored, as a SOAR may send more than
// an app declares.
func (r *Runner) Decode(identifier string, fields Fields, bufs Buffers) (Params, error) {
	if err := r.Check(identifier); err != nil {
		return nil, err
	}
	switch identifier {
	case PostData:
		p, err := DecodePostData(fields, bufs)
		if err != nil {
			return nil, err
		}
		return &p, nil
	case OnPoll:
		p, err := DecodeOnPoll(fields)
		if err != nil {
			return nil, err
		}
		return &p, nil
	}
	return &TestConnectivityParams{echo: echo(fields)}, nil
}

// TestConnectivityParams are test connectivity's parameters: it takes
// none, and repeats what it was given.
type TestConnectivityParams struct{ echo Echo }

func (*TestConnectivityParams) Identifier() string { return TestConnectivity }
func (p *TestConnectivityParams) Echo() Echo       { return p.echo }
func (*TestConnectivityParams) Release()           {}

// fieldReader reads parameter values with the leniency SOAR needs (its
// forms send numbers as strings, and playbooks booleans as "true"),
// collecting a FieldError for each bad one.
type fieldReader struct {
	errs []soarkafka.FieldError
}

func (r *fieldReader) bad(field, format string, args ...any) {
	r.errs = append(r.errs, soarkafka.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// err is the error for what was read: nil, or EINVALID with every field.
func (r *fieldReader) err(what string) error {
	if len(r.errs) == 0 {
		return nil
	}
	return &soarkafka.Error{Code: soarkafka.EINVALID, Message: "invalid " + what + " parameters", Fields: r.errs}
}

// absent reports a value that counts as not given: null, or (for optional
// parameters) the empty string a SOAR form sends for an empty input.
func absent(v jsontext.Value) bool {
	return len(v) == 0 || v.Kind() == 'n' || (len(v) == 2 && v[0] == '"' && v[1] == '"')
}

// kindName names a JSON value's type as soarkafka.JSONType does.
func kindName(v jsontext.Value) string {
	switch v.Kind() {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '0':
		return "a number"
	case '"':
		return "a string"
	case '[':
		return "an array"
	case '{':
		return "an object"
	}
	return "not JSON"
}

// str unquotes a JSON string; ok is false for any other type.
func str(v jsontext.Value) (string, bool) {
	if v.Kind() != '"' {
		return "", false
	}
	b, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// shown is a value as an error message shows it: a string's text, any
// other value's JSON.
func shown(v jsontext.Value) string {
	if s, ok := str(v); ok {
		return s
	}
	return string(v)
}

// number reads a JSON number, or a string holding one (see
// soarkafka.JSONNumber, which decides what a string may hold).
func number(v jsontext.Value) (float64, bool) {
	switch v.Kind() {
	case '0':
		n, err := strconv.ParseFloat(string(v), 64)
		return n, err == nil
	case '"':
		s, _ := str(v)
		return soarkafka.JSONNumber(s)
	}
	return 0, false
}

// boolean reads true or false, or a string strconv.ParseBool takes.
func (r *fieldReader) boolean(name string, v jsontext.Value) bool {
	switch v.Kind() {
	case 't':
		return true
	case 'f', 'n':
		return false
	case '"':
		s, _ := str(v)
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			r.bad(name, "must be true or false, got %q", s)
		}
		return b
	}
	r.bad(name, "must be true or false, got %s", kindName(v))
	return false
}
