package actions

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
)

// Runner runs actions. Its zero value is not usable: build it with NewRunner.
type Runner struct {
	logger *slog.Logger
	// stepTimeout bounds each network step of an action (a dial, a TLS
	// handshake, a SASL login, a metadata request), so that a broker that
	// never answers costs seconds, not the SOAR's whole action timeout.
	stepTimeout time.Duration
}

// RunnerOption configures a Runner.
type RunnerOption func(*Runner)

// WithStepTimeout bounds each network step of an action, overriding the
// default of 10 seconds.
func WithStepTimeout(d time.Duration) RunnerOption { return func(r *Runner) { r.stepTimeout = d } }

// NewRunner returns a Runner that logs to logger.
func NewRunner(logger *slog.Logger, opts ...RunnerOption) *Runner {
	r := &Runner{logger: logger, stepTimeout: 10 * time.Second}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Available lists the identifiers this version runs.
func (r *Runner) Available() []string { return []string{TestConnectivity} }

// Check returns the error Run would give for an identifier it does not
// run, so a caller can refuse the request before resolving its asset.
func (r *Runner) Check(identifier string) error {
	for _, a := range r.Available() {
		if a == identifier {
			return nil
		}
	}
	return soarkafka.Errorf(soarkafka.ENOTFOUND, "action %q is not available; available actions: %s",
		identifier, strings.Join(r.Available(), ", "))
}

// Run runs the action identifier with one parameter set against cfg. The
// returned error is for a request that cannot run at all (unknown action,
// bad parameters): an action that ran and failed is a failed Result.
func (r *Runner) Run(ctx context.Context, identifier string, cfg assets.Config, params map[string]any) (*Result, error) {
	switch identifier {
	case TestConnectivity:
		res := r.TestConnectivity(ctx, cfg)
		if params != nil {
			res.Parameter = params
		}
		return res, nil
	}
	return nil, r.Check(identifier)
}
