package metrics_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/metrics"
)

// The delivery series: delivered and failed counts, the pending gauge,
// the request and end-to-end histograms; nil-safe and forgotten with
// their asset.
func TestDeliverySeries(t *testing.T) {
	m := metrics.New()
	m.Delivered("prod", 1200*time.Millisecond)
	m.Delivered("prod", 0) // end to end unknown: counted, not observed
	m.DeliveryFailed("prod", "retry")
	m.DeliveryFailed("prod", "retry")
	m.DeliveryFailed("prod", "dead")
	m.DeliveryRequest("prod", 4*time.Millisecond)
	m.DeliveryPending("prod", 12)
	m.DeliveryPending("prod", 3)
	m.Delivered("other", time.Second)
	got := series(t, m)
	for _, want := range []string{
		`soarkafka_delivery_delivered_total{asset="prod"} 2`,
		`soarkafka_delivery_failed_total{asset="prod",reason="retry"} 2`,
		`soarkafka_delivery_failed_total{asset="prod",reason="dead"} 1`,
		`soarkafka_delivery_pending{asset="prod"} 3`,
		`soarkafka_delivery_request_seconds_count{asset="prod"} 1`,
		`soarkafka_delivery_request_seconds_bucket{asset="prod",le="0.005"} 1`,
		`soarkafka_delivery_request_seconds_bucket{asset="prod",le="0.0025"} 0`,
		`soarkafka_delivery_end_to_end_seconds_count{asset="prod"} 1`,
		`soarkafka_delivery_end_to_end_seconds_sum{asset="prod"} 1.2`,
		`soarkafka_delivery_end_to_end_seconds_bucket{asset="prod",le="1"} 0`,
		`soarkafka_delivery_end_to_end_seconds_bucket{asset="prod",le="2.5"} 1`,
	} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %s in\n  %s", want, strings.Join(got, "\n  "))
		}
	}
	m.ForgetAsset("prod")
	for _, l := range series(t, m) {
		if strings.Contains(l, `asset="prod"`) {
			t.Errorf("after ForgetAsset: %s", l)
		}
	}
	var none *metrics.Metrics
	none.Delivered("a", time.Second)
	none.DeliveryFailed("a", "auth")
	none.DeliveryRequest("a", time.Second)
	none.DeliveryPending("a", 1)
}
