package poll

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/kafka"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/soar"
)

// PartitionStore is what a spread asset's poll needs of the database
// beside Store: the partitions' owner epochs. *store.DB implements it.
type PartitionStore interface {
	ingest.PartitionRepository
}

// Spread reads a continuous asset as one member of its consumer group
// (ingest.spread): the group spreads the topic's partitions over the
// replicas running it, cooperative-sticky, and moves them when one leaves
// or stops answering. The database stays the source of truth: on
// assignment the replica claims the partitions (each one's owner epoch is
// bumped) and reads from the positions stored, never the group's; each
// batch carries its partition's epoch, so a replica that lost a partition
// cannot store it again (its batch is refused and it drops the partition).
// Batches of different partitions are parsed and stored at once, up to
// ingest.parse_concurrency, each partition's in order. Nothing is
// committed to Kafka: the group only assigns.
//
// It returns nil when ctx ends, or the failure that stopped it (a poison
// message without a dead-letter topic, the database, retention deleting
// the next messages); the scheduler then starts it again.
func (p *Poller) Spread(ctx context.Context, req Request) error {
	req.Kind = ingest.PollContinuous
	if req.Asset == "" {
		return soarkafka.Errorf(soarkafka.EINVALID, "poll: no asset to keep the poll's position under")
	}
	ps, ok := p.store.(PartitionStore)
	if !ok {
		return soarkafka.Errorf(soarkafka.EINTERNAL, "asset %q: ingest.spread needs a store that keeps partition epochs", req.Asset)
	}
	bound, err := p.parsers.Bind(ctx, req.Asset, req.Config.MessageParser)
	if err != nil {
		return fmt.Errorf("asset %q: message_parser: %w", req.Asset, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	concurrency := int(req.Config.Ingest.ParseConcurrency)
	if concurrency <= 0 {
		concurrency = runtime.NumCPU()
	}
	mctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	s := &spread{p: p, ps: ps, req: req, parser: bound, owner: p.replica + "/" + hex.EncodeToString(b[:]) + "/spread",
		sem: make(chan struct{}, concurrency), ctx: mctx, stop: stop, parts: map[int32]*partition{}, since: time.Now()}

	base := []kgo.Opt{
		kgo.RetryTimeout(kafka.StepTimeout(req.Config)),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.FetchMaxBytes(16 << 20),
	}
	plain, err := p.access.NewClient(req.Config, p.logger, append(base, p.kafkaOpts...)...)
	if err != nil {
		return err
	}
	defer plain.Close()
	s.plain, s.adm = plain, kadm.NewClient(plain)

	session := req.Config.SessionTimeout()
	if session <= 0 {
		session = assets.DefaultSessionTimeoutMS * time.Millisecond
	}
	group := req.Config.GroupID(req.Asset)
	cl, err := p.access.NewClient(req.Config, p.logger, append(append(base,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(req.Config.Topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		// The database holds the positions: the group's offsets are
		// neither read (AdjustFetchOffsetsFn replaces them) nor written.
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.SessionTimeout(session),
		kgo.RebalanceTimeout(session),
		kgo.HeartbeatInterval(min(3*time.Second, session/3)),
		// Rebalances wait between two polls, so that records of a poll
		// never reach a partition's worker after its revocation.
		kgo.BlockRebalanceOnPoll(),
		kgo.AdjustFetchOffsetsFn(s.assigned),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { s.drop("revoked", m[req.Config.Topic]) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { s.drop("lost", m[req.Config.Topic]) }),
	), p.kafkaOpts...)...)
	if err != nil {
		return err
	}
	s.cl = cl
	p.logger.InfoContext(ctx, "spread poll joined its consumer group", "asset", req.Asset, "topic", req.Config.Topic, "group", group,
		"owner", s.owner, "parse_concurrency", concurrency, "session_timeout", session)

	recorder := make(chan struct{})
	go func() {
		defer close(recorder)
		s.recordPeriods(mctx)
	}()
	s.dispatch(mctx)
	// Leaving the group revokes every partition: the workers end, their
	// batch in flight stored or refused, before the group moves them.
	cl.AllowRebalance()
	cl.Close()
	s.drop("stopped", s.owned())
	stop(nil)
	<-recorder
	s.record(ctx, context.Cause(mctx))
	p.logger.InfoContext(ctx, "spread poll left its consumer group", "asset", req.Asset, "owner", s.owner)
	if err := context.Cause(mctx); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return err
	}
	return nil
}

// spread is one replica's membership of a spread asset's consumer group.
type spread struct {
	p      *Poller
	ps     PartitionStore
	req    Request
	parser *parsers.Bound
	owner  string
	cl     *kgo.Client // the group member
	plain  *kgo.Client // listing offsets, outside the group
	adm    *kadm.Client
	// sem bounds the batches parsed and stored at once.
	sem  chan struct{}
	ctx  context.Context
	stop context.CancelCauseFunc

	mu    sync.Mutex
	parts map[int32]*partition

	// Counts since the last record (recordPeriods).
	messages, containers, artifacts, duplicates, dead, gaps atomic.Int64
	since                                                   time.Time
}

// partition is one owned partition: its worker parses and stores its
// batches in order.
type partition struct {
	num   int32
	epoch int64
	next  int64 // the next offset the dispatcher hands on
	// resetAt is the offset the dispatcher last set the client's cursor
	// back to (-1: never).
	resetAt int64
	in      chan []soar.Message
	// flush ends the worker after it stored what it holds (the partition
	// is revoked or lost: stored while still its own, or refused).
	flush  chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	lost   atomic.Bool
}

// assigned claims the partitions the group gave this replica, and returns
// the offsets to read them from: the stored positions, read in the claim's
// transaction after every batch of their previous owners.
func (s *spread) assigned(ctx context.Context, offs map[string]map[int32]kgo.Offset) (_ map[string]map[int32]kgo.Offset, err error) {
	// It runs on the client's goroutine: a panic is this assignment's
	// failure (the group tries again), not the process's end.
	defer soarkafka.Recover(ctx, s.p.logger, "spread poll assignment", func(e *soarkafka.PanicError) { err = e }, "asset", s.req.Asset)
	topic := s.req.Config.Topic
	var parts []int32
	for part := range offs[topic] {
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return offs, nil
	}
	slices.Sort(parts)
	s.drop("assigned again", parts) // a worker left from an earlier session
	claim, err := s.ps.ClaimPartitions(ctx, s.req.Asset, topic, s.owner, parts)
	if err != nil {
		s.p.logger.WarnContext(ctx, "spread poll: claim partitions; the group tries again", "asset", s.req.Asset, "partitions", parts, "error", err)
		return nil, err
	}
	starts, ends, err := s.listOffsets(ctx)
	if err != nil {
		return nil, err
	}
	stored := claim.Offsets
	if len(stored) == 0 && !s.req.Config.ReadFromBeginning {
		// The asset's first read, at the latest offsets: stored for every
		// partition at once, so that the replicas that claim the others
		// start there too, not at a later "latest" nor, seeing positions
		// stored, at the beginning as for a partition added later.
		b := &ingest.Batch{Asset: s.req.Asset, Topic: topic}
		for part, end := range ends {
			b.Offsets = append(b.Offsets, ingest.Offset{Partition: part, Next: end})
		}
		if _, err := s.p.store.SaveBatch(ctx, b); err != nil {
			return nil, err
		}
		if stored, err = s.p.store.Offsets(ctx, s.req.Asset, topic); err != nil {
			return nil, err
		}
	}
	out := map[int32]kgo.Offset{}
	for _, part := range parts {
		r := &run{p: s.p, req: s.req, res: &Result{}, cl: s.plain, adm: s.adm, parser: s.parser, epochs: map[int32]int64{part: claim.Epochs[part]},
			positions: map[int32]int64{}, starts: map[int32]int64{}, readEnds: map[int32]int64{}, pendingOffsets: map[int32]int64{}}
		from, err := s.start(r, part, stored, starts[part], ends[part])
		if err != nil {
			// Left unread while this replica owns it: the ingest status
			// says why, and the next assignment tries again.
			s.p.logger.ErrorContext(ctx, "spread poll: partition not read", "asset", s.req.Asset, "partition", part, "error", err)
			s.p.RecordFailure(ctx, s.req.Asset, topic, ingest.PollContinuous, err)
			continue
		}
		s.startWorker(r, part, claim.Epochs[part], from)
		out[part] = kgo.NewOffset().At(from).WithEpoch(-1)
	}
	s.p.logger.InfoContext(ctx, "spread poll: partitions assigned", "asset", s.req.Asset, "owner", s.owner, "partitions", parts, "epochs", claim.Epochs)
	return map[string]map[int32]kgo.Offset{topic: out}, nil
}

// start decides where a partition is read from, as a poll does: its
// stored position, the log start for a partition without one (added
// later, or read from the beginning), past a gap retention left.
func (s *spread) start(r *run, part int32, stored map[int32]int64, logStart, logEnd int64) (int64, error) {
	topic := s.req.Config.Topic
	pos, ok := stored[part]
	switch {
	case !ok:
		r.pendingOffsets[part] = logStart
		return logStart, nil
	case pos < logStart:
		gap := ingest.Gap{Partition: part, From: pos, To: logStart - 1, Count: logStart - pos}
		if s.req.Config.Ingest.OnOffsetOutOfRange == assets.OffsetOutOfRangeFail {
			return 0, soarkafka.Errorf(soarkafka.EUNAVAILABLE,
				"asset %q: partition %d of topic %s: the stored position %d is no longer on the broker (the log starts at %d; retention deleted %d messages before they were ingested). "+
					"ingest.on_offset_out_of_range is fail; set it to earliest to continue from the earliest offset and record the gap",
				s.req.Asset, part, topic, pos, logStart, gap.Count)
		}
		r.pendingGaps = append(r.pendingGaps, gap)
		r.pendingOffsets[part] = logStart
		return logStart, nil
	case pos > logEnd:
		return 0, soarkafka.Errorf(soarkafka.EUNAVAILABLE,
			"asset %q: partition %d of topic %s: the stored position %d is past the log end %d; the topic was probably deleted and created again. "+
				"Ingest it under a new asset name to start over", s.req.Asset, part, topic, pos, logEnd)
	default:
		return pos, nil
	}
}

func (s *spread) listOffsets(ctx context.Context) (starts, ends map[int32]int64, err error) {
	r := &run{p: s.p, req: s.req, res: &Result{}, adm: s.adm}
	return r.listOffsets(ctx)
}

// startWorker starts the worker of a claimed partition.
func (s *spread) startWorker(r *run, part int32, epoch, from int64) {
	wctx, cancel := context.WithCancel(s.ctx)
	w := &partition{num: part, epoch: epoch, next: from, resetAt: -1, in: make(chan []soar.Message, 2), flush: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	r.starts[part], r.positions[part] = from, from
	s.mu.Lock()
	s.parts[part] = w
	s.mu.Unlock()
	go func() {
		defer close(w.done)
		err := s.work(wctx, r, w)
		switch {
		case soarkafka.ErrorCode(err) == soarkafka.ECONFLICT:
			// Another replica claimed the partition (this one was paused
			// or cut off past the session timeout): drop it; the group
			// tells this member so at its next heartbeat.
			w.lost.Store(true)
			s.p.logger.WarnContext(wctx, "spread poll: batch refused by the partition's epoch; this replica dropped the partition",
				"asset", s.req.Asset, "partition", part, "epoch", epoch, "error", err)
		case err == nil || wctx.Err() != nil:
		default:
			s.stop(err) // the member stops; the scheduler starts it again after a pause
		}
	}()
}

// work parses and stores one partition's batches in order, at most
// len(sem) partitions at a time: it cuts a batch at ingest.batch_size
// messages or when its first message waited ingest.max_batch_wait_ms.
func (s *spread) work(ctx context.Context, r *run, w *partition) (err error) {
	defer soarkafka.Recover(ctx, s.p.logger, "spread poll partition", func(e *soarkafka.PanicError) { err = e }, "asset", s.req.Asset, "partition", w.num)
	if len(r.pendingOffsets) > 0 || len(r.pendingGaps) > 0 {
		// Stored before waiting for messages, as a continuous poll does.
		if err := s.store(ctx, r, nil); err != nil {
			return err
		}
	}
	batchSize := int(s.req.Config.Ingest.BatchSize)
	wait := s.req.Config.MaxBatchWait()
	var batch []soar.Message
	var due <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case msgs := <-w.in:
			if len(batch) == 0 {
				due = time.After(wait)
			}
			batch = append(batch, msgs...)
			for len(batch) >= batchSize {
				if err := s.store(ctx, r, batch[:batchSize:batchSize]); err != nil {
					return err
				}
				batch = batch[batchSize:]
			}
			if len(batch) == 0 {
				due = nil
			}
		case <-due:
			due = nil
			if err := s.store(ctx, r, batch); err != nil {
				return err
			}
			batch = nil
		case <-w.flush:
			for more := true; more; {
				select {
				case msgs := <-w.in:
					batch = append(batch, msgs...)
				default:
					more = false
				}
			}
			for len(batch) > 0 {
				n := min(len(batch), batchSize)
				if err := s.store(ctx, r, batch[:n:n]); err != nil {
					return err
				}
				batch = batch[n:]
			}
			return nil
		}
	}
}

// store parses and stores one batch in its turn of the semaphore (msgs
// nil: only the pending positions and gaps), and counts what it stored.
func (s *spread) store(ctx context.Context, r *run, msgs []soar.Message) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	defer func() { <-s.sem }()
	before := *r.res
	var err error
	if msgs == nil {
		err = r.save(ctx, nil, nil, nil)
	} else {
		err = r.process(ctx, msgs, r.containedParse(ctx, msgs))
	}
	res := r.res
	s.messages.Add(int64(len(msgs)))
	s.containers.Add(int64(res.ContainersCreated - before.ContainersCreated))
	s.artifacts.Add(int64(res.ArtifactsCreated - before.ArtifactsCreated))
	s.duplicates.Add(int64(res.DuplicatesSkipped - before.DuplicatesSkipped))
	s.dead.Add(int64(res.DeadLettered - before.DeadLettered))
	s.gaps.Add(int64(len(res.Gaps) - len(before.Gaps)))
	// A worker's result would grow with every container it stored.
	r.res.Containers, r.containers = nil, nil
	if err != nil && ctx.Err() != nil && soarkafka.ErrorCode(err) != soarkafka.ECONFLICT {
		return nil // revoked or stopping: the batch is read again by the partition's next owner
	}
	return err
}

// dispatch polls the group member and hands each partition's records to
// its worker, until ctx ends.
func (s *spread) dispatch(ctx context.Context) {
	max := int(s.req.Config.Ingest.BatchSize)
	for ctx.Err() == nil {
		fs := s.cl.PollRecords(ctx, max)
		if ctx.Err() != nil {
			s.cl.AllowRebalance()
			return
		}
		fs.EachError(func(t string, part int32, err error) {
			switch {
			case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			case errors.Is(err, kerr.OffsetOutOfRange):
				// Retention deleted the next messages: the member stops and
				// joins again, and the new assignment records the gap.
				s.stop(&soarkafka.Error{Code: soarkafka.EUNAVAILABLE, Message: fmt.Sprintf(
					"asset %q: partition %d: the next messages were deleted by retention during the poll; it starts again and records the gap", s.req.Asset, part)})
			default:
				s.p.logger.WarnContext(ctx, "spread poll: fetch", "asset", s.req.Asset, "topic", t, "partition", part, "error", err)
			}
		})
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				return
			}
			s.mu.Lock()
			w := s.parts[fp.Partition]
			s.mu.Unlock()
			if w == nil || w.lost.Load() {
				return
			}
			msgs := make([]soar.Message, 0, len(fp.Records))
			for _, rec := range fp.Records {
				if rec.Offset < w.next {
					continue // read before the partition's stored position
				}
				if rec.Offset > w.next && w.resetAt != w.next {
					// A jump: the client's cursor for the partition ran on
					// from an earlier assignment (an incremental rebalance
					// keeps it) while this worker starts at the stored
					// position. Read again from there, once; a jump that
					// comes back after it is the log's own (compaction,
					// transaction markers).
					w.resetAt = w.next
					s.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{fp.Topic: {fp.Partition: {Epoch: -1, Offset: w.next}}})
					break
				}
				msgs = append(msgs, kafka.MessageOf(rec))
				w.next = rec.Offset + 1
			}
			if len(msgs) == 0 {
				return
			}
			select {
			case w.in <- msgs:
			case <-w.done:
			case <-ctx.Done():
			}
		})
		s.cl.AllowRebalance()
	}
}

// owned lists the partitions with a worker.
func (s *spread) owned() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	parts := make([]int32, 0, len(s.parts))
	for p := range s.parts {
		parts = append(parts, p)
	}
	return parts
}

// drop stops the workers of parts and waits for them. A partition revoked
// or lost has what its worker holds stored first: while the partition is
// still its own it is stored, else its epoch refuses it (the log says so).
// Otherwise a batch being stored is stored, the rest dropped; the
// partition's next owner reads it again from the stored position.
func (s *spread) drop(why string, parts []int32) {
	var ws []*partition
	s.mu.Lock()
	for _, p := range parts {
		if w := s.parts[p]; w != nil {
			ws = append(ws, w)
			delete(s.parts, p)
		}
	}
	s.mu.Unlock()
	for _, w := range ws {
		if why == "revoked" || why == "lost" {
			close(w.flush)
		} else {
			w.cancel()
		}
	}
	for _, w := range ws {
		<-w.done
		w.cancel()
	}
	if len(ws) > 0 {
		s.p.logger.Info("spread poll: partitions given up", "asset", s.req.Asset, "owner", s.owner, "why", why, "partitions", parts)
	}
}

// recordPeriods records what the member stored once per period, as a
// continuous poll records its periods.
func (s *spread) recordPeriods(ctx context.Context) {
	t := time.NewTicker(s.p.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.record(ctx, nil)
		}
	}
}

// record stores one period's record and metrics.
func (s *spread) record(ctx context.Context, err error) {
	start := s.since
	s.since = time.Now()
	msgs, cont, arts, dups := s.messages.Swap(0), s.containers.Swap(0), s.artifacts.Swap(0), s.duplicates.Swap(0)
	dead, gaps := s.dead.Swap(0), s.gaps.Swap(0)
	status := ingest.PollSucceeded
	if err != nil && !errors.Is(err, context.Canceled) {
		status = ingest.PollFailed
	} else {
		err = nil
	}
	d := s.since.Sub(start)
	s.p.rec.PollFinished(s.req.Asset, ingest.PollContinuous, status, d)
	s.p.rec.Ingested(s.req.Asset, int(msgs), int(cont), int(arts), int(dups))
	rec := ingest.PollRecord{Asset: s.req.Asset, Topic: s.req.Config.Topic, Kind: ingest.PollContinuous, StartedAt: start, Duration: d,
		Status: status, MessagesRead: msgs, ContainersCreated: cont, ArtifactsCreated: arts, DuplicatesSkipped: dups, DeadLettered: dead, Gaps: gaps}
	if err != nil {
		rec.Error = err.Error()
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.p.saveTimeout)
	defer cancel()
	if rerr := s.p.store.RecordPoll(rctx, rec); rerr != nil {
		s.p.logger.WarnContext(ctx, "record poll", "asset", s.req.Asset, "error", rerr)
	}
	s.p.logger.InfoContext(ctx, "spread poll period", "asset", s.req.Asset, "owner", s.owner, "messages", msgs,
		"containers_created", cont, "artifacts_created", arts, "duplicates", dups, "error", err)
}
