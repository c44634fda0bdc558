package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
)

// panickingMechanism stands for a gokrb5 login that panics: in
// Authenticate, or in the session's Challenge.
type panickingMechanism struct{ inChallenge bool }

func (panickingMechanism) Name() string { return "GSSAPI" }

func (m panickingMechanism) Authenticate(context.Context, string) (sasl.Session, []byte, error) {
	if m.inChallenge {
		return panickingSession{}, []byte("first"), nil
	}
	panic("login exploded")
}

type panickingSession struct{}

func (panickingSession) Challenge([]byte) (bool, []byte, error) { panic("challenge exploded") }

// kgo logs in on its own connection goroutines: a panic of the Kerberos
// login there would end the process. The GSSAPI mechanism turns it into
// that login's error.
func TestKerberosLoginPanicIsAnError(t *testing.T) {
	_, _, err := guardedMechanism{panickingMechanism{}}.Authenticate(t.Context(), "broker:9092")
	var pe *soarkafka.PanicError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "kerberos login panicked: login exploded") {
		t.Fatalf("Authenticate: %v", err)
	}
	s, first, err := guardedMechanism{panickingMechanism{inChallenge: true}}.Authenticate(t.Context(), "broker:9092")
	if err != nil || string(first) != "first" {
		t.Fatalf("Authenticate: %v %q", err, first)
	}
	if _, _, err := s.Challenge([]byte("x")); !errors.As(err, &pe) || !strings.Contains(err.Error(), "challenge exploded") {
		t.Fatalf("Challenge: %v", err)
	}

	// Every GSSAPI mechanism the asset builds is guarded.
	cfg, err := assets.Decode(map[string]any{"hosts": "h:1", "topic": "t", "use_kerberos": true,
		"kerberos": map[string]any{"principal": "alice", "password": "pw", "realm": "EXAMPLE.COM", "kdc": "kdc"}}, assets.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := (Access{}).SASLMechanism(cfg)
	if _, ok := m.(guardedMechanism); err != nil || !ok {
		t.Fatalf("SASLMechanism: %T %v, want the guarded mechanism", m, err)
	}
}
