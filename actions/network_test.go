package actions

import (
	"net"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// A refused broker stops at the tcp step, with the setting named; brokers
// the cluster advertises are held to the same policy as hosts.
func TestConnectivityHostPolicy(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	host := c.ListenAddrs()[0] // kfake advertises 127.0.0.1:port
	_, port, _ := net.SplitHostPort(host)

	t.Run("seed denied", func(t *testing.T) {
		t.Parallel()
		r, _ := newTestRunner(testStepTimeout, WithAccess(tempAccess(nil, []string{"127.0.0.1:" + port})))
		res := runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": host, "topic": "alerts"}))
		wantFailed(t, res, "broker "+host+": not allowed by network.denied_hosts; this server's network.denied_hosts setting refuses the connection")
		if s := step(t, res, StepTCP, host); s.Status != StepFailed || s.Error != "broker "+host+": not allowed by network.denied_hosts" {
			t.Errorf("tcp step = %+v", s)
		}
		noStep(t, res, StepKafka, host)
	})
	t.Run("advertised broker not allowed", func(t *testing.T) {
		t.Parallel()
		// The seed is allowed by its name, the address it advertises is not.
		r, _ := newTestRunner(testStepTimeout, WithAccess(tempAccess([]string{"localhost:" + port}, nil)))
		seed := "localhost:" + port
		res := runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": seed, "topic": "alerts"}))
		if s := step(t, res, StepKafka, seed); s.Status != StepOK {
			t.Errorf("kafka step through the allowed seed = %+v", s)
		}
		if res.Status != StatusFailed || !strings.Contains(res.Message, "broker "+host+": not allowed by network.allowed_hosts") ||
			!strings.Contains(res.Message, "the cluster advertises brokers (advertised.listeners) this server's network.allowed_hosts setting refuses") {
			t.Errorf("message = %q", res.Message)
		}
	})
}
