package poll

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
)

// Status is where an asset's ingest stands: per partition the stored
// position, the log-end offset and the lag; the last poll; the gaps and
// dead letters. Kafka is asked for the log-end offsets; when it cannot be
// reached, KafkaError says why and the store's part is still given.
type Status struct {
	Asset     string `json:"asset"`
	Topic     string `json:"topic"`
	GroupID   string `json:"group_id"`
	Scheduled bool   `json:"scheduled"`
	Interval  string `json:"interval,omitempty"`
	// Mode is the asset's ingest.mode: interval or continuous.
	Mode       string            `json:"mode"`
	Partitions []PartitionStatus `json:"partitions"`
	// Lag is every partition's lag together; nil when Kafka could not be
	// asked.
	Lag        *int64 `json:"lag"`
	KafkaError string `json:"kafka_error,omitempty"`
	// ConfigError says why the stored configuration cannot be used (it
	// fails the checks of this version); the asset is not polled until
	// it is fixed.
	ConfigError  string     `json:"config_error,omitempty"`
	LastPoll     *PollView  `json:"last_poll"`
	LastSuccess  *time.Time `json:"last_success"`
	Gaps         []GapView  `json:"gaps"`
	GapCount     int64      `json:"gap_count"`
	GapMessages  int64      `json:"gap_messages"`
	DeadLettered int64      `json:"dead_lettered"`
}

// PartitionStatus is one partition's position and lag. Stored is nil
// before the asset's first poll stored a position on it.
type PartitionStatus struct {
	Partition    int32  `json:"partition"`
	StoredOffset *int64 `json:"stored_offset"`
	LogEndOffset *int64 `json:"log_end_offset"`
	Lag          *int64 `json:"lag"`
}

// PollView is a poll record as the API shows it.
type PollView struct {
	Kind              string    `json:"kind"`
	StartedAt         time.Time `json:"started_at"`
	DurationMS        float64   `json:"duration_ms"`
	Status            string    `json:"status"`
	Error             string    `json:"error,omitempty"`
	MessagesRead      int64     `json:"messages_read"`
	ContainersCreated int64     `json:"containers_created"`
	ArtifactsCreated  int64     `json:"artifacts_created"`
	DuplicatesSkipped int64     `json:"duplicates_skipped"`
	DeadLettered      int64     `json:"dead_lettered"`
	Gaps              int64     `json:"gaps"`
}

// History is an asset's recent polls as the API shows them: the last
// polls, newest first, and per minute (UTC) of the last 24 hours, oldest
// first, the messages read and the lag; minutes without a poll are absent.
type History struct {
	Asset   string       `json:"asset"`
	Polls   []PollView   `json:"polls"`
	Minutes []MinuteView `json:"minutes"`
}

// MinuteView is one minute of an asset's history. Lag is the last one a
// poll of the minute knew, nil when none did.
type MinuteView struct {
	Minute   time.Time `json:"minute"`
	Messages int64     `json:"messages"`
	Lag      *int64    `json:"lag"`
}

// GapView is a recorded gap as the API shows it.
type GapView struct {
	Topic      string    `json:"topic"`
	Partition  int32     `json:"partition"`
	From       int64     `json:"from"`
	To         int64     `json:"to"`
	Count      int64     `json:"count"`
	DetectedAt time.Time `json:"detected_at"`
}

// Status returns where the asset's ingest stands.
func (p *Poller) Status(ctx context.Context, asset string, cfg assets.Config) (*Status, error) {
	out, st, err := p.storedStatus(ctx, asset, cfg.Topic)
	if err != nil {
		return nil, err
	}
	out.GroupID, out.Scheduled, out.Interval, out.Mode = cfg.GroupID(asset), cfg.Scheduled(), cfg.Ingest.Interval, cfg.Ingest.Mode

	ends, kerr := p.logEnds(ctx, asset, cfg)
	if kerr != nil {
		out.KafkaError = kerr.Error()
	}
	parts := map[int32]bool{}
	for part := range st.Offsets {
		parts[part] = true
	}
	for part := range ends {
		parts[part] = true
	}
	ids := make([]int32, 0, len(parts))
	for part := range parts {
		ids = append(ids, part)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var total int64
	out.Partitions = []PartitionStatus{}
	for _, part := range ids {
		ps := PartitionStatus{Partition: part}
		if v, ok := st.Offsets[part]; ok {
			ps.StoredOffset = &v
		}
		if v, ok := ends[part]; ok {
			ps.LogEndOffset = &v
			if ps.StoredOffset != nil {
				lag := max(v-*ps.StoredOffset, 0)
				ps.Lag = &lag
				total += lag
			}
		}
		out.Partitions = append(out.Partitions, ps)
	}
	if kerr == nil {
		out.Lag = &total
	}
	return out, nil
}

// storedStatus is the part of an asset's status the store holds: the last
// poll, the last success, the gaps and dead letters.
func (p *Poller) storedStatus(ctx context.Context, asset, topic string) (*Status, *ingest.Status, error) {
	st, err := p.store.Status(ctx, asset, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("ingest status of asset %q: %w", asset, err)
	}
	out := &Status{Asset: asset, Topic: topic, GapCount: st.GapCount, GapMessages: st.GapMessages, DeadLettered: st.DeadLettered, Gaps: []GapView{}}
	if r := st.LastPoll; r != nil {
		v := pollView(*r)
		out.LastPoll = &v
	}
	if !st.LastSuccess.IsZero() {
		t := st.LastSuccess
		out.LastSuccess = &t
	}
	for _, g := range st.Gaps {
		out.Gaps = append(out.Gaps, GapView{Topic: g.Topic, Partition: g.Partition, From: g.From, To: g.To, Count: g.Count, DetectedAt: g.DetectedAt})
	}
	return out, st, nil
}

func pollView(r ingest.PollRecord) PollView {
	return PollView{Kind: r.Kind, StartedAt: r.StartedAt, DurationMS: float64(r.Duration.Microseconds()) / 1000,
		Status: r.Status, Error: r.Error, MessagesRead: r.MessagesRead, ContainersCreated: r.ContainersCreated,
		ArtifactsCreated: r.ArtifactsCreated, DuplicatesSkipped: r.DuplicatesSkipped, DeadLettered: r.DeadLettered, Gaps: r.Gaps}
}

// History returns the asset's last polls and its messages and lag per
// minute over the last 24 hours, as the store keeps them.
func (p *Poller) History(ctx context.Context, asset string) (*History, error) {
	h, err := p.store.History(ctx, asset)
	if err != nil {
		return nil, fmt.Errorf("poll history of asset %q: %w", asset, err)
	}
	out := &History{Asset: asset, Polls: make([]PollView, 0, len(h.Polls)), Minutes: make([]MinuteView, 0, len(h.Minutes))}
	for _, r := range h.Polls {
		out.Polls = append(out.Polls, pollView(r))
	}
	for _, m := range h.Minutes {
		out.Minutes = append(out.Minutes, MinuteView{Minute: m.Minute, Messages: m.Messages, Lag: m.Lag})
	}
	return out, nil
}

// BrokenStatus is the status of an asset whose stored configuration cannot
// be used (cfgErr says why): what the store holds, without asking Kafka,
// which the configuration cannot reach.
func (p *Poller) BrokenStatus(ctx context.Context, asset, topic string, cfgErr error) (*Status, error) {
	out, st, err := p.storedStatus(ctx, asset, topic)
	if err != nil {
		return nil, err
	}
	out.ConfigError = cfgErr.Error()
	out.Partitions = []PartitionStatus{}
	for part, v := range st.Offsets {
		out.Partitions = append(out.Partitions, PartitionStatus{Partition: part, StoredOffset: &v})
	}
	sort.Slice(out.Partitions, func(i, j int) bool { return out.Partitions[i].Partition < out.Partitions[j].Partition })
	return out, nil
}

// logEnds lists the log-end offsets of the asset's topic, within a few
// seconds: a status page must answer even when Kafka does not. The asset's
// status client is reused across calls (statusClients).
func (p *Poller) logEnds(ctx context.Context, asset string, cfg assets.Config) (map[int32]int64, error) {
	sc, err := p.status.acquire(asset, cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	eo, err := kadm.NewClient(sc.client).ListEndOffsets(ctx, cfg.Topic)
	if err == nil {
		err = eo.Error()
	}
	// A broker's answer (an unknown topic) keeps the client; a failed
	// connection, login or request drops it.
	p.status.release(sc, err != nil && !brokerAnswered(err))
	if err != nil {
		return nil, fmt.Errorf("list the log-end offsets of topic %s: %w", cfg.Topic, err)
	}
	ends := map[int32]int64{}
	eo.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	return ends, nil
}

// Close closes the Kafka clients Status keeps. Safe to call twice; a
// Status after it still answers, with a client of its own.
func (p *Poller) Close() { p.status.close() }
