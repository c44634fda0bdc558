package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/soar"
)

// MessageOf is a record as a parser sees it.
func MessageOf(r *kgo.Record) soar.Message {
	m := soar.Message{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value,
		Timestamp: r.Timestamp, Message: string(r.Value)}
	if len(r.Headers) > 0 {
		m.Headers = make([]soar.Header, len(r.Headers))
		for i, h := range r.Headers {
			m.Headers[i] = soar.Header{Key: h.Key, Value: string(h.Value)}
		}
	}
	return m
}

// MaxSample bounds how many messages Sample reads.
const MaxSample = 1000

// Sample reads up to count messages of the asset's topic, the newest
// (from "latest") or the oldest (from "earliest"), for the parser
// playground. It uses no consumer group: it commits nothing and moves no
// one's position. It waits at most the asset's poll timeout, and connects
// through a's host policy like every client.
func (a Access) Sample(ctx context.Context, cfg assets.Config, logger *slog.Logger, from string, count int) ([]soar.Message, error) {
	if count <= 0 || count > MaxSample {
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "sample.count must be from 1 to %d", MaxSample)
	}
	if from != "latest" && from != "earliest" {
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "sample.from must be latest or earliest, not %q", from)
	}
	cl, err := a.NewClient(cfg, logger, kgo.RetryTimeout(StepTimeout(cfg)))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, cfg.PollTimeout())
	defer cancel()

	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("sample %s: list offsets: %w", cfg.Topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("sample %s: list offsets: %w", cfg.Topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("sample %s: %w", cfg.Topic, err)
	}
	// Where each partition starts and how far it is read: every partition
	// may hold the newest records, so each gives up to count from its end.
	offsets := map[int32]kgo.Offset{}
	stop := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		start := int64(0)
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
			start = s.Offset
		}
		if o.Offset <= start {
			return // empty partition
		}
		first := start
		if from == "latest" && o.Offset-int64(count) > start {
			first = o.Offset - int64(count)
		}
		offsets[o.Partition] = kgo.NewOffset().At(first)
		stop[o.Partition] = o.Offset
	})
	if len(offsets) == 0 {
		return []soar.Message{}, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: offsets})

	var recs []*kgo.Record
	done := map[int32]bool{}
	for len(done) < len(stop) && (from == "latest" || len(recs) < count) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			if len(recs) > 0 {
				break // what came in time
			}
			return nil, fmt.Errorf("sample %s: no messages within %s (the asset's timeout)", cfg.Topic, cfg.PollTimeout())
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("sample %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < stop[r.Partition] {
				recs = append(recs, r)
			}
			if r.Offset >= stop[r.Partition]-1 {
				done[r.Partition] = true
			}
		})
	}
	// Newest or oldest count across partitions, in time order.
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Timestamp.Before(recs[j].Timestamp) })
	if len(recs) > count {
		if from == "latest" {
			recs = recs[len(recs)-count:]
		} else {
			recs = recs[:count]
		}
	}
	msgs := make([]soar.Message, len(recs))
	for i, r := range recs {
		msgs[i] = MessageOf(r)
	}
	return msgs, nil
}
