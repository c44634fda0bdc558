package deliver

import (
	"context"

	"github.com/soarkafka/soarkafka/assets"
)

// PendingCounter counts the outbox rows of an asset that wait for
// delivery; *store.DB is one.
type PendingCounter interface {
	OutboxPending(ctx context.Context, asset string) (int, error)
}

// Backpressure holds the polls of a push asset back while more of its
// containers wait for delivery than delivery.max_pending allows, so that
// a SOAR that is down or slow makes Kafka keep the backlog instead of the
// database. It is the poll package's Backpressure. Pull assets, and inline
// configurations (never pushed), have no limit.
type Backpressure struct {
	Store PendingCounter
}

// Pending returns the asset's waiting outbox rows and its limit.
func (b Backpressure) Pending(ctx context.Context, asset string, cfg assets.Config) (pending, limit int, err error) {
	if !cfg.Push() || cfg.Delivery.MaxPending <= 0 {
		return 0, 0, nil
	}
	n, err := b.Store.OutboxPending(ctx, asset)
	if err != nil {
		return 0, 0, err
	}
	return n, int(cfg.Delivery.MaxPending), nil
}
