package app

import (
	"context"

	"github.com/soarkafka/soarkafka/assets"
)

// subscribeAssetChanges makes every stored change of an asset, by any write
// path, take effect at once: the pooled producer built from the old
// configuration is dropped, the scheduler reads the assets again, and a
// deleted asset's metric series go with it, and push delivery starts,
// restarts or stops the asset's worker. Each is a subscriber of its own,
// so that a panic in one does not skip the others.
func (s *Server) subscribeAssetChanges() {
	s.assets.Subscribe(func(_ context.Context, c assets.Change) { s.runner.Forget(c.Name) })
	if s.scheduler != nil {
		s.assets.Subscribe(func(context.Context, assets.Change) { s.scheduler.Wake() })
	}
	s.assets.Subscribe(func(context.Context, assets.Change) { s.delivery.Changed() })
	s.assets.Subscribe(func(_ context.Context, c assets.Change) {
		if c.Deleted {
			s.metrics.ForgetAsset(c.Name)
		}
	})
}
