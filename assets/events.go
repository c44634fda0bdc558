package assets

import (
	"context"
	"log/slog"

	"github.com/soarkafka/soarkafka"
)

// Change is one stored write to an asset, as the service's subscribers
// hear of it: the asset was created or updated (Deleted false), or it was
// deleted.
type Change struct {
	Name    string
	Deleted bool
}

// Subscriber is told of each change once it is stored. It runs on the
// writer's goroutine before the write returns, so that what it drops (a
// pooled producer, a metric series) is gone by the time the caller sees
// the answer: it must be quick and must not wait on the network.
type Subscriber func(ctx context.Context, c Change)

// WithLogger logs what the service's subscribers do wrong (a panic) to
// logger; without it, nothing is logged.
func WithLogger(logger *slog.Logger) ServiceOption {
	return func(s *Service) { s.logger = logger }
}

// Subscribe has fn told of every create, update and delete that succeeds,
// whichever path made it (the API, a form, a file applied at start): the
// side effects of a change belong to the service, not to each caller.
// Subscribers run in the order they subscribed; a panic in one is logged
// and stops that one only, never the write, which is already stored.
func (s *Service) Subscribe(fn Subscriber) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	// A new slice each time: announce reads its copy without the lock.
	s.subscribers = append(s.subscribers[:len(s.subscribers):len(s.subscribers)], fn)
}

// announce tells every subscriber of c. The write is stored: its side
// effects follow even if the caller has gone away, hence the context
// without its cancellation.
func (s *Service) announce(ctx context.Context, c Change) {
	s.subMu.Lock()
	subs := s.subscribers
	s.subMu.Unlock()
	ctx = context.WithoutCancel(ctx)
	for _, fn := range subs {
		s.tell(ctx, fn, c)
	}
}

func (s *Service) tell(ctx context.Context, fn Subscriber, c Change) {
	defer soarkafka.Recover(ctx, s.logger, "asset change subscriber", nil, "asset", c.Name, "deleted", c.Deleted)
	fn(ctx, c)
}
