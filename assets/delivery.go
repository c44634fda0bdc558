package assets

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Delivery holds the settings of push delivery: whether the server writes
// stored containers into the SOAR itself, and how it reaches it.
type Delivery struct {
	Mode                string `json:"mode"`
	Target              string `json:"target"`
	URL                 string `json:"url"`
	Token               string `json:"token"`
	Username            string `json:"username"`
	VerifyTLS           bool   `json:"verify_tls"`
	CAPEM               string `json:"ca_pem"`
	AssetID             int64  `json:"asset_id"` // 0: not set
	Label               string `json:"label"`
	Concurrency         int64  `json:"concurrency"`
	ArtifactsPerRequest int64  `json:"artifacts_per_request"`
	MaxPending          int64  `json:"max_pending"`
	TimeoutMS           int64  `json:"timeout_ms"`
}

// Push reports whether the asset's containers are pushed to the SOAR.
func (c Config) Push() bool { return c.Delivery.Mode == DeliveryPush }

// DeliveryLabel is the label stamped on pushed containers that have none:
// delivery.label, else ingest.container_label.
func (c Config) DeliveryLabel() string {
	if c.Delivery.Label != "" {
		return c.Delivery.Label
	}
	return c.Ingest.ContainerLabel
}

// RequestTimeout is TimeoutMS as a duration.
func (d Delivery) RequestTimeout() time.Duration {
	return time.Duration(d.TimeoutMS) * time.Millisecond
}

// validate checks the delivery block. In pull mode the push settings are
// kept but not required: switching an asset to pull (to stop pushing for a
// while) must not make the user delete its SOAR address and token.
func (d *Delivery) validate(errs *fieldErrors) {
	if !d.VerifyTLS && d.CAPEM != "" {
		errs.add("delivery.ca_pem", "is set but delivery.verify_tls is false, so nothing would check the certificate against it; set delivery.verify_tls to true, or remove delivery.ca_pem")
	}
	if d.Mode != DeliveryPush {
		return
	}
	if d.URL == "" {
		what := "the base URL of the Splunk SOAR (https://soar.example.com)"
		if d.Target == TargetXSOARWebhook {
			what = "the URL of the XSOAR Generic Webhook"
		}
		errs.add("delivery.url", "required with delivery.mode push: "+what)
	}
	switch d.Target {
	case TargetSplunkSOAR:
		if d.Token == "" {
			errs.add("delivery.token", "required with delivery.mode push: the ph-auth-token of a SOAR automation user")
		}
		if d.AssetID == 0 {
			errs.add("delivery.asset_id", "required with delivery.mode push to splunk_soar: the id of the SOAR asset the containers belong to (SOAR de-duplicates containers per asset)")
		}
	case TargetXSOARWebhook:
		if d.Username == "" {
			errs.add("delivery.username", "required with delivery.target xsoar_webhook: the webhook's basic-auth user name")
		}
		if d.Token == "" {
			errs.add("delivery.token", "required with delivery.target xsoar_webhook: the webhook's basic-auth password")
		}
	}
}

// validateUnused refuses the settings the chosen target would not read.
func (d *Delivery) validateUnused(errs *fieldErrors) {
	switch d.Target {
	case TargetSplunkSOAR:
		if d.Username != "" {
			errs.add("delivery.username", "is set but delivery.target splunk_soar does not use it (SOAR takes the token alone); remove it, or set delivery.target to xsoar_webhook")
		}
	case TargetXSOARWebhook:
		if d.AssetID != 0 {
			errs.add("delivery.asset_id", "is set but delivery.target xsoar_webhook does not use it; remove it, or set delivery.target to splunk_soar")
		}
	}
}

// deliveryURLProblem says what is wrong with a delivery URL, or nil. The
// token travels with every request, so plain http is refused except to
// this host itself.
func deliveryURLProblem(s string) []string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return []string{fmt.Sprintf("%q is not an absolute http(s) URL; write it as https://soar.example.com", s)}
	}
	if u.User != nil {
		return []string{"holds a user name or password; give the token in delivery.token (and the user in delivery.username)"}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return []string{"has a query or fragment; give the base URL only"}
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return []string{fmt.Sprintf("is plain http to %s, which would send the token in the clear; use https (http is accepted to a loopback address only)", u.Hostname())}
	}
	return nil
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// labelProblem says why s is not a label name, or nil.
func labelProblem(s string) []string {
	switch {
	case len(s) > 128:
		return []string{fmt.Sprintf("is %d characters long; a label has at most 128", len(s))}
	case !containerLabel.MatchString(s):
		return []string{fmt.Sprintf("%q is not a label name: use lowercase letters, digits, '_' and '-' (e.g. events, kafka_alerts)", s)}
	}
	return nil
}
