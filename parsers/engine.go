package parsers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/parsers/bundled"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/soar"
)

// Run is the outcome of one parser call on a batch.
type Run struct {
	// Results is the []soar.Result as JSON.
	Results json.RawMessage `json:"results"`
	// Log is the parser's fmt output (user parsers only).
	Log string `json:"log"`
	// Duration is the call's time, worker round trip included.
	Duration time.Duration `json:"-"`
	// Native says the parser ran compiled in (bundled) rather than in the
	// sandbox.
	Native bool `json:"native"`
}

// Engine runs parsers: bundled ones natively, user sources in sandbox
// workers from a pool. It never compiles user code in its own process.
type Engine struct {
	pool *sandbox.Pool
}

// NewEngine returns an engine whose workers start as cfg says (the
// server's own binary with its hidden parser-worker subcommand).
func NewEngine(cfg sandbox.PoolConfig) *Engine {
	return &Engine{pool: sandbox.NewPool(cfg)}
}

// Close stops every worker.
func (e *Engine) Close() { e.pool.Close() }

// RunBundled runs a bundled parser natively; its results are encoded as the
// sandbox encodes them, so both paths answer alike.
func (e *Engine) RunBundled(p bundled.Parser, topic string, msgs []soar.Message) (r Run, err error) {
	start := time.Now()
	results, err := e.RunBundledResults(p, topic, msgs)
	if err != nil {
		return Run{}, err
	}
	b, err := jsonv2.Marshal(results, sandbox.ResultOptions())
	if err != nil {
		return Run{}, batchError(topic, msgs, &sandbox.ScriptError{Parser: p.Name, Kind: "result", Message: err.Error()})
	}
	return Run{Results: b, Duration: time.Since(start), Native: true}, nil
}

// RunBundledResults runs a bundled parser natively and returns its results
// as values: a poll stores them without the JSON round trip RunBundled
// makes for the API.
func (e *Engine) RunBundledResults(p bundled.Parser, topic string, msgs []soar.Message) (results []soar.Result, err error) {
	defer func() {
		// Bundled parsers are ours, but a panic on odd input must not take
		// the server down: it is that batch's error.
		if v := recover(); v != nil {
			err = batchError(topic, msgs, &sandbox.ScriptError{Parser: p.Name, Kind: "panic", Message: sandbox.BoundText(fmt.Sprint(v), sandbox.MaxErrorText)})
		}
	}()
	results, err = p.Parse(topic, msgs)
	if err != nil {
		// Bounded as a user parser's are: an error may quote the message.
		return nil, batchError(topic, msgs, &sandbox.ScriptError{Parser: p.Name, Kind: "error", Message: sandbox.BoundText(err.Error(), sandbox.MaxErrorText)})
	}
	if msg := sandbox.CountProblem(results); msg != "" {
		return nil, batchError(topic, msgs, &sandbox.ScriptError{Parser: p.Name, Kind: "result", Message: msg})
	}
	if results == nil {
		results = []soar.Result{}
	}
	return results, nil
}

// RunSource runs a user parser's source in a sandbox worker of its own,
// closed after the call: the playground and the sample run at save, which
// must share nothing with an asset's polls.
func (e *Engine) RunSource(ctx context.Context, name, source, topic string, msgs []soar.Message) (Run, error) {
	res, err := e.pool.CallOnce(ctx, name, source, topic, msgs)
	return sourceRun(topic, msgs, res, err)
}

// RunSourceFor runs a user parser's source for an asset, in a worker that
// serves that asset and that parser version and nothing else (kept between
// batches): what a script keeps in package variables stays with the
// asset.
func (e *Engine) RunSourceFor(ctx context.Context, asset, name, source, topic string, msgs []soar.Message) (Run, error) {
	res, err := e.pool.Call(ctx, asset, name, source, topic, msgs)
	return sourceRun(topic, msgs, res, err)
}

func sourceRun(topic string, msgs []soar.Message, res sandbox.CallResult, err error) (Run, error) {
	if errors.Is(err, sandbox.ErrBusy) {
		// Not the parser's fault nor the batch's: the server is at its
		// cap on workers, and the client should come back.
		return Run{}, &soarkafka.Error{Code: soarkafka.EUNAVAILABLE, Message: err.Error()}
	}
	if err != nil {
		return Run{}, batchError(topic, msgs, err)
	}
	return Run{Results: res.Results, Log: res.Log, Duration: res.Duration}, nil
}

// batchError names the batch a parser failed on by its first message, so
// that an operator can find it on the topic.
func batchError(topic string, msgs []soar.Message, err error) error {
	if len(msgs) == 0 {
		return err
	}
	return fmt.Errorf("batch of %d from %s %d:%d: %w", len(msgs), topic, msgs[0].Partition, msgs[0].Offset, err)
}

// RunError is a parser failure as the API shows it: what kind, the message
// with the script's file:line:col where there is one, and the log so far.
type RunError struct {
	Kind     string          `json:"kind"` // check, compile, panic, error, result, timeout, crash
	Message  string          `json:"message"`
	Problems []ProblemReport `json:"problems,omitempty"`
	Trace    string          `json:"trace,omitempty"`
	Log      string          `json:"log,omitempty"`
}

// ProblemReport is one problem of a static check.
type ProblemReport struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

// DescribeError turns an error from Check or a run into a RunError. It
// returns nil for errors that are not the parser's (the server's own).
func DescribeError(err error) *RunError {
	var ce *sandbox.CheckError
	var se *sandbox.ScriptError
	var crash *sandbox.CrashError
	switch {
	case errors.As(err, &ce):
		re := &RunError{Kind: "check", Message: ce.Error()}
		for _, p := range ce.Problems {
			re.Problems = append(re.Problems, ProblemReport{Line: p.Pos.Line, Column: p.Pos.Column, Message: p.Message})
		}
		return re
	case errors.As(err, &se):
		return &RunError{Kind: se.Kind, Message: err.Error(), Trace: se.Trace, Log: se.Log}
	case errors.Is(err, sandbox.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		// A caller's deadline (an asset's parser_timeout) can end the call
		// before the worker's own: a timeout all the same.
		return &RunError{Kind: "timeout", Message: err.Error()}
	case errors.As(err, &crash):
		return &RunError{Kind: "crash", Message: err.Error()}
	}
	return nil
}

// invalid wraps a parser failure as an EINVALID application error for a
// save: the source is what the client must fix.
func invalid(name string, err error) error {
	re := DescribeError(err)
	if re == nil {
		return err
	}
	e := &soarkafka.Error{Code: soarkafka.EINVALID, Message: fmt.Sprintf("parser %q: %s", name, re.Message)}
	for _, p := range re.Problems {
		e.Fields = append(e.Fields, soarkafka.FieldError{Field: fmt.Sprintf("source:%d:%d", p.Line, p.Column), Message: p.Message})
	}
	if len(e.Fields) > 0 {
		e.Message = fmt.Sprintf("parser %q does not pass the checks", name)
	}
	return e
}
