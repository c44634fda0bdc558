package actions

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/kafka"
	"github.com/soarkafka/soarkafka/poll"
	"github.com/soarkafka/soarkafka/produce"
)

// Target is what an action runs against: a stored asset's name and its
// configuration, or an inline configuration (Asset "").
type Target struct {
	Asset  string
	Config assets.Config
	// SOARAssetID is the asset_id of a SOAR app-run document with an
	// inline configuration: on poll keeps its position under it.
	SOARAssetID string
}

// Runner runs actions. Build it with NewRunner and Close it when done: it
// keeps one producer per asset between actions.
type Runner struct {
	logger *slog.Logger
	// stepTimeout bounds each network step of an action (a dial, a TLS
	// handshake, a SASL login, a metadata request), so that a broker that
	// never answers costs seconds, not the SOAR's whole action timeout.
	stepTimeout time.Duration
	producers   *kafka.Pool
	poolOpts    []kafka.PoolOption
	// access is what assets may reach: hosts and files.
	access kafka.Access
	// producer sends what post data and the records endpoint produce.
	producer    *produce.Engine
	produceOpts []produce.Option
	// poller runs on poll; without one (no database) on poll is
	// unavailable.
	poller *poll.Poller
}

// ProduceRecorder counts produced messages per asset; *metrics.Metrics is
// one.
type ProduceRecorder = produce.Recorder

// WithProduceRecorder counts what is produced with rec (metrics).
func WithProduceRecorder(rec ProduceRecorder) RunnerOption {
	return func(r *Runner) { r.produceOpts = append(r.produceOpts, produce.WithRecorder(rec)) }
}

// RunnerOption configures a Runner.
type RunnerOption func(*Runner)

// WithStepTimeout bounds each network step of an action, overriding the
// default of 10 seconds.
func WithStepTimeout(d time.Duration) RunnerOption { return func(r *Runner) { r.stepTimeout = d } }

// WithAccess connects and reads files through a (network.allowed_hosts,
// network.denied_hosts, files.allowed_dirs), in every action and in the
// pooled producers. The zero Access allows every host and no file path.
func WithAccess(a kafka.Access) RunnerOption { return func(r *Runner) { r.access = a } }

// Access is the runner's access, for other users of assets' brokers (the
// parser playground's sample).
func (r *Runner) Access() kafka.Access { return r.access }

// WithDeliveryWait caps how long a send is awaited when post data's timeout
// is 0, overriding DefaultDeliveryWait. Past it, a message is reported as
// unacknowledged (it may still be written).
func WithDeliveryWait(d time.Duration) RunnerOption {
	return func(r *Runner) { r.produceOpts = append(r.produceOpts, produce.WithDeliveryWait(d)) }
}

// DefaultDeliveryWait is the default of WithDeliveryWait.
const DefaultDeliveryWait = produce.DefaultDeliveryWait

// WithProducerIdleTimeout closes a pooled producer unused for d, overriding
// kafka.DefaultIdleTimeout.
func WithProducerIdleTimeout(d time.Duration) RunnerOption {
	return func(r *Runner) { r.poolOpts = append(r.poolOpts, kafka.WithIdleTimeout(d)) }
}

// WithPoller runs on poll with p.
func WithPoller(p *poll.Poller) RunnerOption { return func(r *Runner) { r.poller = p } }

// NewRunner returns a Runner that logs to logger.
func NewRunner(logger *slog.Logger, opts ...RunnerOption) *Runner {
	r := &Runner{logger: logger, stepTimeout: 10 * time.Second}
	for _, o := range opts {
		o(r)
	}
	r.producers = kafka.NewPool(logger, append([]kafka.PoolOption{kafka.WithAccess(r.access)}, r.poolOpts...)...)
	r.producer = produce.New(logger, r.producers, r.produceOpts...)
	return r
}

// Close closes the pooled producers, flushing what they hold.
func (r *Runner) Close() { r.producers.Close() }

// Forget drops what the runner keeps for an asset that changed or was
// deleted (its producer), so nothing outlives the asset.
func (r *Runner) Forget(asset string) { r.producers.Evict(asset) }

// Producer is the produce engine post data sends through, over the
// runner's producer pool (kept per asset, dropped by Forget): the streaming
// records endpoint produces through it too.
func (r *Runner) Producer() *produce.Engine { return r.producer }

// Producers is the runner's producer pool; tests look at what it holds.
func (r *Runner) Producers() *kafka.Pool { return r.producers }

// Available lists the identifiers this version runs.
func (r *Runner) Available() []string { return []string{TestConnectivity, OnPoll, PostData} }

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

// Run runs the action its parameters are for against target (Decode
// makes them). The returned error is for a request that cannot run at all
// (no database for on poll): an action that ran and failed is a failed
// Result.
func (r *Runner) Run(ctx context.Context, target Target, params Params) (*Result, error) {
	switch p := params.(type) {
	case *TestConnectivityParams:
		res := r.TestConnectivity(ctx, target.Config)
		res.Parameter = p.Echo()
		return res, nil
	case *PostDataParams:
		return r.PostData(ctx, target, p)
	case *OnPollParams:
		return r.OnPoll(ctx, target, p)
	}
	return nil, fmt.Errorf("actions: no action takes parameters of type %T", params)
}
