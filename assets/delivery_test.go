package assets_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

func TestDeliveryDefaults(t *testing.T) {
	cfg, err := assets.Decode(base(), assets.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Delivery
	if cfg.Push() || d.Mode != assets.DeliveryPull || d.Target != assets.TargetSplunkSOAR || !d.VerifyTLS ||
		d.Concurrency != 4 || d.ArtifactsPerRequest != 100 || d.MaxPending != 10000 || d.TimeoutMS != 30000 || d.AssetID != 0 {
		t.Fatalf("defaults %+v", d)
	}
	if cfg.DeliveryLabel() != assets.DefaultContainerLabel {
		t.Fatalf("label %q, want ingest.container_label's default", cfg.DeliveryLabel())
	}
}

func TestDeliveryAccepted(t *testing.T) {
	certs := testenv.NewTLSCerts(t)
	caPEM, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		delivery map[string]any
		check    func(assets.Config) bool
	}{
		{"splunk soar push", map[string]any{"mode": "PUSH", "url": "https://soar.example.com", "token": "tok", "asset_id": "7",
			"label": "kafka_alerts", "concurrency": 16, "artifacts_per_request": 1000, "ca_pem": string(caPEM), "timeout_ms": 500},
			func(c assets.Config) bool {
				return c.Push() && c.Delivery.AssetID == 7 && c.DeliveryLabel() == "kafka_alerts" && c.Delivery.Concurrency == 16 &&
					c.Delivery.RequestTimeout().Milliseconds() == 500 && c.Delivery.Token == "tok"
			}},
		{"http to a loopback address", map[string]any{"mode": "push", "url": "http://127.0.0.1:8443", "token": "tok", "asset_id": 1},
			func(c assets.Config) bool { return c.Delivery.URL == "http://127.0.0.1:8443" }},
		{"xsoar webhook", map[string]any{"mode": "push", "target": "xsoar_webhook", "url": "https://xsoar.example.com/instance/execute/kafka",
			"username": "soarkafka", "token": "pw", "verify_tls": "false"},
			func(c assets.Config) bool {
				return c.Delivery.Target == assets.TargetXSOARWebhook && !c.Delivery.VerifyTLS
			}},
		{"pull keeps the push settings", map[string]any{"mode": "pull", "url": "https://soar.example.com", "token": "tok"},
			func(c assets.Config) bool { return !c.Push() && c.Delivery.URL == "https://soar.example.com" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := assets.Decode(with("delivery", tc.delivery), assets.DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg) {
				t.Fatalf("decoded %+v", cfg.Delivery)
			}
		})
	}
}

// Every refusal names its field and says what to do.
func TestDeliveryRefusals(t *testing.T) {
	for _, tc := range []struct {
		name     string
		delivery map[string]any
		want     map[string]string
	}{
		{"push needs url, token, asset id", map[string]any{"mode": "push"}, map[string]string{
			"delivery.url": "required with delivery.mode push", "delivery.token": "ph-auth-token", "delivery.asset_id": "id of the SOAR asset"}},
		{"xsoar needs user and password", map[string]any{"mode": "push", "target": "xsoar_webhook", "url": "https://x.example.com"}, map[string]string{
			"delivery.username": "basic-auth user name", "delivery.token": "basic-auth password"}},
		{"plain http elsewhere", map[string]any{"url": "http://soar.example.com"}, map[string]string{"delivery.url": "use https"}},
		{"not a URL", map[string]any{"url": "soar.example.com"}, map[string]string{"delivery.url": "not an absolute http(s) URL"}},
		{"credentials in the URL", map[string]any{"url": "https://u:p@soar.example.com"}, map[string]string{"delivery.url": "delivery.token"}},
		{"mode", map[string]any{"mode": "stream"}, map[string]string{"delivery.mode": "not one of pull, push"}},
		{"target", map[string]any{"target": "thehive"}, map[string]string{"delivery.target": "not one of splunk_soar, xsoar_webhook"}},
		{"bounds", map[string]any{"concurrency": 17, "artifacts_per_request": 0, "max_pending": 0, "timeout_ms": 5, "asset_id": -1}, map[string]string{
			"delivery.concurrency": "above the maximum 16", "delivery.artifacts_per_request": "below the minimum 1",
			"delivery.max_pending": "below the minimum 1", "delivery.timeout_ms": "below the minimum 100", "delivery.asset_id": "below the minimum 0"}},
		{"label", map[string]any{"label": "Bad Label"}, map[string]string{"delivery.label": "not a label name"}},
		{"ca pem", map[string]any{"ca_pem": "not pem"}, map[string]string{"delivery.ca_pem": "no PEM certificate"}},
		{"ca pem without verification", map[string]any{"verify_tls": false, "ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
			map[string]string{"delivery.ca_pem": "no PEM certificate"}},
		{"username for splunk soar", map[string]any{"username": "u"}, map[string]string{"delivery.username": "splunk_soar does not use it"}},
		{"asset id for xsoar", map[string]any{"target": "xsoar_webhook", "asset_id": 3}, map[string]string{"delivery.asset_id": "xsoar_webhook does not use it"}},
		{"unknown field", map[string]any{"urll": "x"}, map[string]string{"delivery.urll": "unknown field"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := assets.Decode(with("delivery", tc.delivery), assets.DecodeOptions{})
			got := fieldErrs(t, err)
			for field, want := range tc.want {
				if !strings.Contains(got[field], want) {
					t.Errorf("%s: %q, want it to say %q (all: %v)", field, got[field], want, got)
				}
			}
			for field := range got {
				if _, ok := tc.want[field]; !ok {
					t.Errorf("unexpected error on %s: %s", field, got[field])
				}
			}
		})
	}
	// A CA bundle that parses, with verification off: the bundle would go unused.
	certs := testenv.NewTLSCerts(t)
	caPEM, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	_, err = assets.Decode(with("delivery", map[string]any{"verify_tls": false, "ca_pem": string(caPEM)}), assets.DecodeOptions{})
	if got := fieldErrs(t, err)["delivery.ca_pem"]; !strings.Contains(got, "delivery.verify_tls is false") {
		t.Fatalf("delivery.ca_pem: %q", got)
	}
}

// delivery.token is sealed at rest and never shown; an update that leaves
// it out keeps it.
func TestDeliveryTokenIsSealedAndNeverShown(t *testing.T) {
	svc, _ := newServices(t)
	ctx := t.Context()
	const token = "ph-token-do-not-show"
	doc := with("delivery", map[string]any{"mode": "push", "url": "https://soar.example.com", "token": token, "asset_id": 5})
	view, err := svc.Create(ctx, assets.Input{Name: "p", Config: doc})
	if err != nil {
		t.Fatal(err)
	}
	shown, _ := json.Marshal(view)
	if strings.Contains(string(shown), token) || !view.Secrets["delivery.token"] {
		t.Fatalf("view %s: the token is shown, or not said to be set", shown)
	}
	cfg, a, err := svc.Resolve(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	stored := a.Config["delivery"].(map[string]any)["token"]
	if !assets.IsSealed(stored) || strings.Contains(stored.(string), token) {
		t.Fatalf("stored token %v is not sealed", stored)
	}
	if cfg.Delivery.Token != token {
		t.Fatalf("resolved token %q", cfg.Delivery.Token)
	}
	upd := with("delivery", map[string]any{"mode": "push", "url": "https://soar2.example.com", "asset_id": 5})
	if _, err := svc.Update(ctx, "p", assets.Input{Config: upd}); err != nil {
		t.Fatal(err)
	}
	if cfg, _, err := svc.Resolve(ctx, "p"); err != nil || cfg.Delivery.Token != token || cfg.Delivery.URL != "https://soar2.example.com" {
		t.Fatalf("after an update without the token: %+v, %v", cfg.Delivery, err)
	}
}
