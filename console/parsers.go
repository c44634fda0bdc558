package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/audit"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/soar"
)

// Parsers is the parsers service as the console's parser pages use it.
type Parsers interface {
	List(ctx context.Context) ([]*parsers.View, error)
	Get(ctx context.Context, name string) (*parsers.View, error)
	Create(ctx context.Context, in parsers.Input) (*parsers.View, error)
	Update(ctx context.Context, name string, in parsers.Input) (*parsers.View, error)
	Delete(ctx context.Context, name string) error
	Versions(ctx context.Context, name string) ([]*parsers.View, error)
	Version(ctx context.Context, name string, version int64) (*parsers.View, error)
	Test(ctx context.Context, in parsers.TestInput) (*parsers.TestOutput, error)
}

// maxPlaygroundMessages bounds a pasted batch: the playground is for
// trying a parser, not for bulk runs.
const maxPlaygroundMessages = 500

type parsersListData struct {
	pageData
	Parsers []*parsers.View
	Error   string
	Notice  string
}

func (c *Console) parsersPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := &parsersListData{pageData: pageData{Title: "Parsers", Nav: "Parsers"}}
	if r.URL.Query().Get("deleted") != "" {
		d.Notice = "Parser " + r.URL.Query().Get("deleted") + " deleted."
	}
	if c.opts.Parsers == nil {
		d.Error = "Parsers are not available on this server."
	} else if list, err := c.opts.Parsers.List(r.Context()); err != nil {
		c.opts.Logger.Error("console: list parsers", "err", err)
		d.Error = "The parsers could not be read: " + soarkafka.ErrorMessage(err)
	} else {
		d.Parsers = list
	}
	c.render(w, r, http.StatusOK, "parsers", s, d)
}

// problemLine is one line of the editor the check or a run blames.
type problemLine struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

type parserEditData struct {
	pageData
	New         bool
	Name        string
	Description string
	Source      string
	Bundled     bool
	Version     int64
	Versions    []*parsers.View
	Error       string
	Notice      string
	Problems    []problemLine
	Assets      []string
}

// ProblemsJSON is the data-problems attribute the editor's script reads
// to mark the lines in the gutter.
func (d parserEditData) ProblemsJSON() string {
	b, _ := json.Marshal(d.Problems)
	return string(b)
}

// newParserSource is what a new parser's editor starts with.
const newParserSource = `package parser

import "github.com/soarkafka/soarkafka/soar"

// ParseMessages turns a batch of messages into containers with artifacts.
func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {
	var out []soar.Result
	for _, m := range messages {
		out = append(out, soar.Result{
			Container: soar.Container{Name: m.Message, Label: "events", Severity: "medium"},
			Artifacts: []soar.Artifact{{Name: "message", CEF: map[string]any{"message": m.Message}}},
		})
	}
	return out, nil
}
`

func (c *Console) parserNewPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := &parserEditData{pageData: pageData{Title: "New parser", Nav: "Parsers"}, New: true, Source: newParserSource}
	d.Assets = c.assetNames(r.Context())
	c.render(w, r, http.StatusOK, "parser", s, d)
}

func (c *Console) parserPage(w http.ResponseWriter, r *http.Request, s *session) {
	if c.opts.Parsers == nil {
		c.notFound(w, r, s)
		return
	}
	name := r.PathValue("name")
	v, err := c.opts.Parsers.Get(r.Context(), name)
	if err != nil {
		if soarkafka.ErrorCode(err) == soarkafka.ENOTFOUND {
			c.notFound(w, r, s)
			return
		}
		c.opts.Logger.Error("console: read parser", "parser", name, "err", err)
		http.Error(w, "The parser could not be read; the server's log says why.", http.StatusInternalServerError)
		return
	}
	d := c.editData(r.Context(), v)
	if r.URL.Query().Get("saved") != "" {
		d.Notice = "Saved as version " + r.URL.Query().Get("saved") + "."
	}
	c.render(w, r, http.StatusOK, "parser", s, d)
}

func (c *Console) editData(ctx context.Context, v *parsers.View) *parserEditData {
	d := &parserEditData{
		pageData: pageData{Title: "Parser " + v.Name, Nav: "Parsers"},
		Name:     v.Name, Description: v.Description, Source: v.Source,
		Bundled: v.Bundled, Version: v.Version,
	}
	if !v.Bundled {
		if vs, err := c.opts.Parsers.Versions(ctx, v.Name); err == nil {
			d.Versions = vs
		}
	}
	d.Assets = c.assetNames(ctx)
	return d
}

func (c *Console) assetNames(ctx context.Context) []string {
	if c.opts.Assets == nil {
		return nil
	}
	list, err := c.opts.Assets.List(ctx)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(list))
	for _, a := range list {
		names = append(names, a.Name)
	}
	return names
}

func (c *Console) recordParser(r *http.Request, s *session, name, action string, version int64) {
	var changes map[string]any
	if version > 0 {
		changes = map[string]any{"version": version}
	}
	c.record(r, s, audit.KindParser, name, action, version, changes)
}

// parserSave creates (POST /parsers) or updates (POST /parsers/{name}) a
// parser; a refused save shows the page again with the check's problems
// at their lines.
func (c *Console) parserSave(w http.ResponseWriter, r *http.Request, s *session) {
	if c.opts.Parsers == nil {
		c.notFound(w, r, s)
		return
	}
	name := r.PathValue("name")
	if err := r.ParseForm(); err != nil {
		// Past maxFormBytes the form is cut short: say so rather than
		// report a missing source.
		http.Error(w, "The form is larger than the console accepts ("+strconv.Itoa(maxFormBytes>>10)+
			" KiB): save a source this large with PUT /v1/parsers/{name}.", http.StatusRequestEntityTooLarge)
		return
	}
	in := parsers.Input{
		Name:        strings.TrimSpace(r.PostFormValue("name")),
		Description: r.PostFormValue("description"),
		Source:      strings.ReplaceAll(r.PostFormValue("source"), "\r\n", "\n"),
	}
	var v *parsers.View
	var err error
	action := audit.ActionCreate
	if name == "" {
		v, err = c.opts.Parsers.Create(r.Context(), in)
	} else {
		action = audit.ActionUpdate
		in.Name = name
		v, err = c.opts.Parsers.Update(r.Context(), name, in)
	}
	if err != nil {
		d := &parserEditData{
			pageData: pageData{Title: "Parser " + in.Name, Nav: "Parsers"},
			New:      name == "", Name: in.Name, Description: in.Description, Source: in.Source,
		}
		if name != "" {
			if old, gerr := c.opts.Parsers.Get(r.Context(), name); gerr == nil {
				ed := c.editData(r.Context(), old)
				d.Versions, d.Version, d.Bundled = ed.Versions, ed.Version, ed.Bundled
			}
		}
		d.Assets = c.assetNames(r.Context())
		d.Error, d.Problems = saveProblems(err)
		if d.Error == "" {
			c.opts.Logger.Error("console: save parser", "parser", in.Name, "err", err)
			d.Error = "The parser could not be saved; the server's log says why."
		}
		c.render(w, r, http.StatusUnprocessableEntity, "parser", s, d)
		return
	}
	c.recordParser(r, s, v.Name, action, v.Version)
	http.Redirect(w, r, "/parsers/"+v.Name+"?saved="+strconv.FormatInt(v.Version, 10), http.StatusSeeOther)
}

var parserSourceField = regexp.MustCompile(`^source:(\d+):(\d+)$`)

// saveProblems turns a refused save into its message and, for the
// check's problems (fields "source:line:col"), the lines to mark.
func saveProblems(err error) (string, []problemLine) {
	var e *soarkafka.Error
	if !errors.As(err, &e) || e.Code == soarkafka.EINTERNAL {
		return "", nil
	}
	var lines []problemLine
	var other []string
	for _, f := range e.Fields {
		if m := parserSourceField.FindStringSubmatch(f.Field); m != nil {
			l, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			lines = append(lines, problemLine{Line: l, Column: col, Message: f.Message})
			continue
		}
		other = append(other, f.Field+": "+f.Message)
	}
	msg := e.Message
	if len(other) > 0 {
		msg += " — " + strings.Join(other, "; ")
	}
	if len(lines) == 0 {
		// A compile error or a failed sample run names file:line in its
		// message.
		if l := blamedLine(e.Message); l > 0 {
			lines = append(lines, problemLine{Line: l, Message: e.Message})
		}
	}
	return msg, lines
}

var scriptLinePattern = regexp.MustCompile(`\.go:(\d+)(?::(\d+))?`)

// blamedLine is the first script line a message or trace names, 0 when
// none.
func blamedLine(text string) int {
	m := scriptLinePattern.FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	l, _ := strconv.Atoi(m[1])
	return l
}

func (c *Console) parserDelete(w http.ResponseWriter, r *http.Request, s *session) {
	if c.opts.Parsers == nil {
		c.notFound(w, r, s)
		return
	}
	name := r.PathValue("name")
	if err := c.opts.Parsers.Delete(r.Context(), name); err != nil {
		v, gerr := c.opts.Parsers.Get(r.Context(), name)
		if gerr != nil {
			c.notFound(w, r, s)
			return
		}
		d := c.editData(r.Context(), v)
		d.Error = "Not deleted: " + soarkafka.ErrorMessage(err)
		c.render(w, r, http.StatusConflict, "parser", s, d)
		return
	}
	c.recordParser(r, s, name, audit.ActionDelete, 0)
	http.Redirect(w, r, "/parsers?deleted="+url.QueryEscape(name), http.StatusSeeOther)
}

// playgroundData is the playground's answer, put beside the editor.
type playgroundData struct {
	Parser     string
	Messages   int
	Error      string
	Failure    *parsers.RunError
	FailLine   int
	Containers []playContainer
	Raw        string
	Log        string
	Duration   string
}

type playContainer struct {
	soar.Container
	Artifacts []playArtifact
}

type playArtifact struct {
	soar.Artifact
	CEF []playCEF
}

type playCEF struct{ Key, Value string }

// FailLineAttr is the data-fail-line attribute the editor's script reads.
func (p playgroundData) FailLineAttr() string { return strconv.Itoa(p.FailLine) }

// parserPlaygroundPage is the playground's answer as a page of its own,
// for a browser without script (the form posted without htmx).
type parserPlaygroundPage struct {
	pageData
	Name string
	Play *playgroundData
}

func (c *Console) parserPlayground(w http.ResponseWriter, r *http.Request, s *session) {
	d := c.playground(r)
	if r.Header.Get("HX-Request") == "" {
		c.render(w, r, http.StatusOK, "parserplay", s, &parserPlaygroundPage{
			pageData: pageData{Title: "Playground", Nav: "Parsers"}, Name: r.PostFormValue("name"), Play: d})
		return
	}
	c.render(w, r, http.StatusOK, "playground", s, d)
}

func (c *Console) playground(r *http.Request) *playgroundData {
	d := &playgroundData{}
	if c.opts.Parsers == nil {
		d.Error = "Parsers are not available on this server."
		return d
	}
	in := parsers.TestInput{
		Name:   strings.TrimSpace(r.PostFormValue("name")),
		Source: strings.ReplaceAll(r.PostFormValue("source"), "\r\n", "\n"),
	}
	if r.PostFormValue("input") == "asset" {
		in.Asset = strings.TrimSpace(r.PostFormValue("asset"))
		if in.Asset == "" {
			d.Error = "asset: choose the asset whose topic to sample."
			return d
		}
		in.From = r.PostFormValue("from")
		if n, err := strconv.Atoi(r.PostFormValue("count")); err == nil && n > 0 && n <= 200 {
			in.Count = n
		}
	} else {
		msgs, err := pastedMessages(r.PostFormValue("messages"), time.Now())
		if err != nil {
			d.Error = err.Error()
			return d
		}
		in.Messages = msgs
	}
	out, err := c.opts.Parsers.Test(r.Context(), in)
	if err != nil {
		d.Error = soarkafka.ErrorMessage(err)
		return d
	}
	d.Parser, d.Messages = out.Parser, out.Messages
	if out.Error != nil {
		d.Failure = out.Error
		d.Log = out.Error.Log
		for _, p := range out.Error.Problems {
			d.FailLine = p.Line
			break
		}
		if d.FailLine == 0 {
			d.FailLine = blamedLine(out.Error.Message + "\n" + out.Error.Trace)
		}
		return d
	}
	// The service times a run that answered; a failure has no duration.
	d.Duration = strconv.FormatFloat(out.DurationMS, 'f', 1, 64) + " ms"
	d.Log = out.Run.Log
	var results []soar.Result
	if err := json.Unmarshal(out.Run.Results, &results); err != nil {
		d.Error = "The parser's results could not be read: " + err.Error()
		return d
	}
	for _, res := range results {
		pc := playContainer{Container: res.Container}
		for _, a := range res.Artifacts {
			pc.Artifacts = append(pc.Artifacts, playArtifact{Artifact: a, CEF: playCEFFields(a.CEF)})
		}
		d.Containers = append(d.Containers, pc)
	}
	raw, _ := json.MarshalIndent(json.RawMessage(out.Run.Results), "", "  ")
	d.Raw = string(raw)
	return d
}

// playCEFFields lists an artifact's CEF fields in key order, values as JSON
// where they are not text.
func playCEFFields(m map[string]any) []playCEF {
	out := make([]playCEF, 0, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		out = append(out, playCEF{k, s})
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Key < out[j-1].Key; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// pastedMessages reads the playground's messages: a JSON list (each
// element a message; a string element is its text, anything else its
// JSON), or else one message per non-empty line.
func pastedMessages(text string, now time.Time) ([]soar.Message, error) {
	var values []string
	trimmed := strings.TrimSpace(text)
	if strings.HasPrefix(trimmed, "[") {
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(trimmed), &list); err != nil {
			return nil, errors.New("messages: the text starts with [ but is not a JSON list (" + err.Error() + "); give a JSON list, or one message per line")
		}
		for _, e := range list {
			var s string
			if json.Unmarshal(e, &s) == nil {
				values = append(values, s)
			} else {
				values = append(values, string(e))
			}
		}
	} else {
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimRight(l, "\r"); strings.TrimSpace(l) != "" {
				values = append(values, l)
			}
		}
	}
	if len(values) == 0 {
		return nil, errors.New("messages: paste at least one message (one per line, or a JSON list), or sample an asset's topic")
	}
	if len(values) > maxPlaygroundMessages {
		return nil, errors.New("messages: at most " + strconv.Itoa(maxPlaygroundMessages) + " at a time; paste fewer")
	}
	msgs := make([]soar.Message, len(values))
	for i, v := range values {
		msgs[i] = soar.Message{Topic: "playground", Offset: int64(i), Value: []byte(v), Message: v, Timestamp: now}
	}
	return msgs, nil
}
