package parsers_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/kafka"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
)

// oneAsset resolves one asset name to its configuration, as assets.Service
// does for a stored asset.
type oneAsset struct {
	name string
	cfg  assets.Config
}

func (o oneAsset) Resolve(_ context.Context, name string) (assets.Config, *assets.Asset, error) {
	if name != o.name {
		return assets.Config{}, nil, soarkafka.Errorf(soarkafka.ENOTFOUND, "asset %q not found", name)
	}
	return o.cfg, nil, nil
}

// The playground's live sample is taken by the service: the asset
// resolved, its topic read from a real cluster, the parser run on it.
func TestServiceLiveSample(t *testing.T) {
	svc := newService(t, sandbox.PoolConfig{})
	ctx := t.Context()
	in := parsers.TestInput{Name: "default", Asset: "live", From: "earliest", Count: 2}

	if _, err := svc.Test(ctx, in); soarkafka.ErrorCode(err) != soarkafka.EUNAVAILABLE {
		t.Fatalf("without a live sampler: %v, want %s", err, soarkafka.EUNAVAILABLE)
	}

	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	testenv.ProduceKafkaRecords(t, c, "alerts", 0, 3)
	svc.UseLiveSample(oneAsset{"live", testenv.KafkaAssetConfig(t, c, nil)}, kafka.Access{}, nil)

	out, err := svc.Test(ctx, in)
	if err != nil || out.Run == nil || out.Messages != 2 {
		t.Fatalf("live sample: %v %+v, want a run on 2 messages", err, out)
	}
	if _, err := svc.Test(ctx, parsers.TestInput{Name: "default", Asset: "gone"}); soarkafka.ErrorCode(err) != soarkafka.ENOTFOUND {
		t.Errorf("unknown asset: %v, want %s", err, soarkafka.ENOTFOUND)
	}
	both := in
	both.Messages = messages("m")
	if _, err := svc.Test(ctx, both); soarkafka.ErrorCode(err) != soarkafka.EINVALID {
		t.Errorf("messages and asset: %v, want %s", err, soarkafka.EINVALID)
	}
}
