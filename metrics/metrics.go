// Package metrics owns what soarkafka exposes to Prometheus: the ingest and
// produce series, the Go runtime and process collectors, and the handler
// that serves them on /metrics. Every series lives in a registry of its own,
// never in client_golang's default one, so two servers in one process (as in
// tests) count apart. The prometheus types stay inside this package: callers
// see methods named after what happened (a poll finished, messages were
// produced), not counters and labels.
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// InlineAsset is the asset label of an action run with an inline
// configuration instead of a stored asset (asset "").
const InlineAsset = "inline"

// PollBuckets are the poll duration histogram's upper bounds, in seconds:
// from a 1 ms poll of an idle topic to the 10 minutes of a large backlog.
var PollBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// DeliveryBuckets are the push delivery histograms' upper bounds, in
// seconds: from a 1 ms request to a backlog of minutes.
var DeliveryBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// Metrics records what the server does and serves it to Prometheus. Every
// method is safe for concurrent use, and safe on a nil *Metrics, where it
// does nothing: code that records metrics needs no "if m != nil".
type Metrics struct {
	reg    *prometheus.Registry
	logger *slog.Logger

	pollDuration *prometheus.HistogramVec
	polls        *prometheus.CounterVec
	messages     *prometheus.CounterVec
	containers   *prometheus.CounterVec
	artifacts    *prometheus.CounterVec
	duplicates   *prometheus.CounterVec
	parserErrors *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	gaps         *prometheus.CounterVec
	gapMessages  *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	produced     *prometheus.CounterVec

	delivered      *prometheus.CounterVec
	deliveryFailed *prometheus.CounterVec
	pending        *prometheus.GaugeVec
	requestSeconds *prometheus.HistogramVec
	endToEnd       *prometheus.HistogramVec

	// perAsset are the vectors with an asset label, for ForgetAsset.
	perAsset []interface {
		DeletePartialMatch(prometheus.Labels) int
	}
}

// Option configures Metrics.
type Option func(*Metrics)

// WithLogger is where the handler logs the errors of a scrape (a collector
// that fails, a client that goes away mid-answer); slog.Default() when not
// given.
func WithLogger(l *slog.Logger) Option {
	return func(m *Metrics) {
		if l != nil {
			m.logger = l
		}
	}
}

// New returns Metrics with its own registry, holding the soarkafka series
// and the Go runtime and process collectors.
func New(opts ...Option) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), logger: slog.Default()}
	for _, o := range opts {
		o(m)
	}
	counter := func(subsystem, name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "soarkafka", Subsystem: subsystem, Name: name, Help: help}, labels)
	}
	m.pollDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "soarkafka", Subsystem: "ingest", Name: "poll_duration_seconds",
		Help:    "Duration of a poll of an asset's topic, from start to the last batch stored, in seconds; kind is what started it (scheduled, action, poll_now), status how it ended (success, failed).",
		Buckets: PollBuckets,
	}, []string{"asset", "kind", "status"})
	m.polls = counter("ingest", "polls_total", "Polls run, by asset, kind and how they ended.", "asset", "kind", "status")
	m.messages = counter("ingest", "messages_total", "Kafka messages read by polls.", "asset")
	m.containers = counter("ingest", "containers_created_total", "Containers created by polls (duplicates not counted).", "asset")
	m.artifacts = counter("ingest", "artifacts_created_total", "Artifacts created by polls (duplicates not counted).", "asset")
	m.duplicates = counter("ingest", "duplicates_skipped_total", "Artifacts a poll skipped because the asset had stored them already (same source_data_identifier).", "asset")
	m.parserErrors = counter("ingest", "parser_errors_total", "Parser failures (error, panic, timeout or malformed result) on a batch of messages.", "asset")
	m.deadLettered = counter("ingest", "dead_lettered_total", "Messages no parser could handle, sent to the asset's dead-letter topic.", "asset")
	m.gaps = counter("ingest", "gaps_total", "Offset gaps found by polls: messages gone from the partition (retention, compaction) before they were read.", "asset", "partition")
	m.gapMessages = counter("ingest", "gap_messages_total", "Messages lost in offset gaps: offsets skipped because the partition no longer had them.", "asset", "partition")
	m.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "soarkafka", Subsystem: "ingest", Name: "lag_messages",
		Help: "Messages on the partition not yet ingested (log end offset minus the asset's committed offset) at the end of the last scheduled poll.",
	}, []string{"asset", "partition"})
	m.produced = counter("produce", "messages_total", "Messages produced to Kafka by post data, by asset (inline for an inline configuration) and result (ok or failed).", "asset", "result")

	m.delivered = counter("delivery", "delivered_total", "Outbox rows (a batch's part of one container) pushed to the SOAR.", "asset")
	m.deliveryFailed = counter("delivery", "failed_total", "Failed attempts to push to the SOAR, by reason: retry (5xx, 429, timeout, connection), auth (401/403: delivery paused) or dead (refused: dead-lettered).", "asset", "reason")
	m.pending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "soarkafka", Subsystem: "delivery", Name: "pending",
		Help: "Outbox rows of the asset waiting to be pushed (pending or in flight), as its worker last counted them.",
	}, []string{"asset"})
	m.requestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "soarkafka", Subsystem: "delivery", Name: "request_seconds",
		Help: "Duration of one HTTP request to the SOAR, in seconds.", Buckets: DeliveryBuckets,
	}, []string{"asset"})
	m.endToEnd = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "soarkafka", Subsystem: "delivery", Name: "end_to_end_seconds",
		Help: "Time from the oldest Kafka timestamp of a batch's messages to the SOAR's answer for its container, in seconds.", Buckets: DeliveryBuckets,
	}, []string{"asset"})

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.pollDuration, m.polls, m.messages, m.containers, m.artifacts, m.duplicates,
		m.parserErrors, m.deadLettered, m.gaps, m.gapMessages, m.lag, m.produced,
		m.delivered, m.deliveryFailed, m.pending, m.requestSeconds, m.endToEnd,
	)
	m.perAsset = append(m.perAsset, m.pollDuration, m.polls, m.messages, m.containers, m.artifacts, m.duplicates,
		m.parserErrors, m.deadLettered, m.gaps, m.gapMessages, m.lag, m.produced,
		m.delivered, m.deliveryFailed, m.pending, m.requestSeconds, m.endToEnd)
	return m
}

// assetLabel is an asset's label value: its name, or InlineAsset for "".
func assetLabel(asset string) string {
	if asset == "" {
		return InlineAsset
	}
	return asset
}

func partitionLabel(p int32) string { return strconv.FormatInt(int64(p), 10) }

// add adds n to c; a negative n (a caller's bug) would panic in a counter,
// so it is dropped.
func add(c prometheus.Counter, n int) {
	if n >= 0 {
		c.Add(float64(n))
	}
}

// PollFinished records a poll of asset that took d: kind is what started it
// and status how it ended (ingest.PollScheduled, ingest.PollSucceeded...).
func (m *Metrics) PollFinished(asset, kind, status string, d time.Duration) {
	if m == nil {
		return
	}
	a := assetLabel(asset)
	m.pollDuration.WithLabelValues(a, kind, status).Observe(d.Seconds())
	m.polls.WithLabelValues(a, kind, status).Inc()
}

// Ingested records what a poll of asset did: messages read, containers and
// artifacts created, artifacts skipped as duplicates. Each series exists
// from the first poll, at 0 if need be, so that rate() sees its first rise.
func (m *Metrics) Ingested(asset string, messages, containers, artifacts, duplicates int) {
	if m == nil {
		return
	}
	a := assetLabel(asset)
	add(m.messages.WithLabelValues(a), messages)
	add(m.containers.WithLabelValues(a), containers)
	add(m.artifacts.WithLabelValues(a), artifacts)
	add(m.duplicates.WithLabelValues(a), duplicates)
}

// ParserError records a parser failure on one of asset's batches.
func (m *Metrics) ParserError(asset string) {
	if m == nil {
		return
	}
	m.parserErrors.WithLabelValues(assetLabel(asset)).Inc()
}

// DeadLettered records n of asset's messages sent to its dead-letter topic.
func (m *Metrics) DeadLettered(asset string, n int) {
	if m == nil {
		return
	}
	add(m.deadLettered.WithLabelValues(assetLabel(asset)), n)
}

// Gap records an offset gap of messages messages on one of asset's
// partitions. A gap of no messages is none, and is not counted.
func (m *Metrics) Gap(asset string, partition int32, messages int64) {
	if m == nil || messages <= 0 {
		return
	}
	a, p := assetLabel(asset), partitionLabel(partition)
	m.gaps.WithLabelValues(a, p).Inc()
	m.gapMessages.WithLabelValues(a, p).Add(float64(messages))
}

// Lag sets the messages of asset's partition not yet ingested. A negative
// lag (the end offset read before a commit that passed it) is 0.
func (m *Metrics) Lag(asset string, partition int32, lag int64) {
	if m == nil {
		return
	}
	m.lag.WithLabelValues(assetLabel(asset), partitionLabel(partition)).Set(float64(max(lag, 0)))
}

// Produced records the messages post data sent for asset ("" for an inline
// configuration): ok acknowledged by the broker, failed not. Both series
// exist from the first call.
func (m *Metrics) Produced(asset string, ok, failed int) {
	if m == nil {
		return
	}
	a := assetLabel(asset)
	add(m.produced.WithLabelValues(a, "ok"), ok)
	add(m.produced.WithLabelValues(a, "failed"), failed)
}

// Delivered records an outbox row of asset pushed to the SOAR; endToEnd
// is the time from its oldest Kafka message, 0 when unknown.
func (m *Metrics) Delivered(asset string, endToEnd time.Duration) {
	if m == nil {
		return
	}
	m.delivered.WithLabelValues(assetLabel(asset)).Inc()
	if endToEnd > 0 {
		m.endToEnd.WithLabelValues(assetLabel(asset)).Observe(endToEnd.Seconds())
	}
}

// DeliveryFailed records a failed push attempt; reason is retry, auth or
// dead.
func (m *Metrics) DeliveryFailed(asset, reason string) {
	if m == nil {
		return
	}
	m.deliveryFailed.WithLabelValues(assetLabel(asset), reason).Inc()
}

// DeliveryRequest records one HTTP request to the SOAR that took d.
func (m *Metrics) DeliveryRequest(asset string, d time.Duration) {
	if m == nil {
		return
	}
	m.requestSeconds.WithLabelValues(assetLabel(asset)).Observe(d.Seconds())
}

// DeliveryPending records how many outbox rows of asset wait.
func (m *Metrics) DeliveryPending(asset string, n int64) {
	if m == nil {
		return
	}
	m.pending.WithLabelValues(assetLabel(asset)).Set(float64(n))
}

// ForgetAsset deletes every series of asset, for an asset deleted or
// renamed: without it, its last lag would be exposed for ever. A poll of
// that asset still running records again; stop it first.
func (m *Metrics) ForgetAsset(asset string) {
	if m == nil {
		return
	}
	labels := prometheus.Labels{"asset": assetLabel(asset)}
	for _, v := range m.perAsset {
		v.DeletePartialMatch(labels)
	}
}

// Handler serves the registry in the Prometheus exposition formats
// (compressed when the scraper asks). A collector that fails is logged and
// the rest is served. On a nil *Metrics it returns nil, which the web layer
// answers with 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return nil
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.logger.With("component", "metrics").Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}
