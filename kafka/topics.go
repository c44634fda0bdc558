package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
)

// TopicOffsets is a topic with the partitions the cluster reports for it.
type TopicOffsets struct {
	Topic      string            `json:"topic"`
	Partitions []PartitionOffset `json:"partitions"`
}

// PartitionOffset is one partition: its leader's broker id (-1 when it has
// none) and its earliest and latest offsets (the log start and the high
// watermark: the offset the next message gets). An offset the cluster did
// not give is -1, and Error says why.
type PartitionOffset struct {
	Partition      int32  `json:"partition"`
	EarliestOffset int64  `json:"earliest_offset"`
	LatestOffset   int64  `json:"latest_offset"`
	Leader         int32  `json:"leader"`
	Error          string `json:"error,omitempty"`
}

// topicsSteps bounds Topics in step timeouts: metadata, earliest and
// latest offsets, each with its retries.
const topicsSteps = 3

// Topics lists the topics the asset's credentials can see, internal ones
// left out, or only topic when it is not empty, each with its partitions'
// leaders and earliest and latest offsets, sorted by topic then partition.
// It reads metadata and offsets only: no consumer group, nothing created.
//
// A topic that does not exist is a *soarkafka.Error ENOTFOUND; brokers that
// do not answer, refuse the login or the request are EUNAVAILABLE, worded
// with the asset's hosts; a configuration that cannot make a client (an
// unreadable ca_cert) is the EINVALID of ClientOptions.
func (a Access) Topics(ctx context.Context, cfg assets.Config, topic string, logger *slog.Logger) ([]TopicOffsets, error) {
	step := StepTimeout(cfg)
	cl, err := a.NewClient(cfg, logger, kgo.RetryTimeout(step), kgo.RequestTimeoutOverhead(step))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, topicsSteps*step)
	defer cancel()
	adm := kadm.NewClient(cl)

	var named []string
	if topic != "" {
		named = []string{topic}
	}
	details, err := adm.ListTopics(ctx, named...)
	if err != nil {
		return nil, a.unavailable(cfg, "read the cluster's topics", err)
	}
	if topic != "" {
		td, ok := details[topic]
		switch {
		case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
			return nil, soarkafka.Errorf(soarkafka.ENOTFOUND, "topic %q does not exist on the cluster of hosts %s (or the asset's credentials may not see it); check its name, or list the topics without topic", topic, cfg.Hosts)
		case errors.Is(td.Err, kerr.TopicAuthorizationFailed):
			return nil, soarkafka.Errorf(soarkafka.EUNAVAILABLE, "topic %q: the cluster refuses to describe it to the asset's credentials; grant them Describe on the topic", topic)
		case td.Err != nil:
			return nil, a.unavailable(cfg, fmt.Sprintf("describe topic %q", topic), td.Err)
		}
	}
	names := details.Names()
	out := []TopicOffsets{}
	if len(names) == 0 {
		return out, nil
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil && len(starts) == 0 {
		return nil, a.unavailable(cfg, "list the earliest offsets", err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil && len(ends) == 0 {
		return nil, a.unavailable(cfg, "list the latest offsets", err)
	}
	for _, name := range names {
		td := details[name]
		t := TopicOffsets{Topic: name, Partitions: []PartitionOffset{}}
		for _, pd := range td.Partitions.Sorted() {
			p := PartitionOffset{Partition: pd.Partition, Leader: pd.Leader, EarliestOffset: -1, LatestOffset: -1}
			var errs []string
			if pd.Err != nil {
				errs = append(errs, pd.Err.Error())
			}
			for _, o := range []struct {
				what   string
				listed kadm.ListedOffsets
				into   *int64
			}{{"earliest offset", starts, &p.EarliestOffset}, {"latest offset", ends, &p.LatestOffset}} {
				lo, ok := o.listed.Lookup(name, pd.Partition)
				switch {
				case !ok:
					errs = append(errs, o.what+": not answered")
				case lo.Err != nil:
					errs = append(errs, o.what+": "+lo.Err.Error())
				default:
					*o.into = lo.Offset
				}
			}
			p.Error = strings.Join(errs, "; ")
			t.Partitions = append(t.Partitions, p)
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out, nil
}

// unavailable words a failure to reach or ask the asset's cluster.
func (a Access) unavailable(cfg assets.Config, what string, err error) error {
	if e, ok := errors.AsType[*soarkafka.Error](err); ok {
		return e
	}
	return &soarkafka.Error{Code: soarkafka.EUNAVAILABLE, Message: fmt.Sprintf(
		"could not %s through the brokers of hosts %s: %v; check hosts and the security settings (test connectivity names the step that fails)", what, cfg.Hosts, err)}
}
