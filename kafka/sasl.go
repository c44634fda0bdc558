package kafka

import (
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/soarkafka/soarkafka/assets"
)

// saslMechanisms builds the SASL mechanism named by sasl_mechanism from the
// asset. A new mechanism (GSSAPI, AWS_MSK_IAM) is one more entry; an entry
// returns a *soarkafka.Error (fieldError) for a setting the user must fix.
var saslMechanisms = map[string]func(a Access, cfg assets.Config) (sasl.Mechanism, error){
	assets.MechanismPlain: func(_ Access, cfg assets.Config) (sasl.Mechanism, error) {
		return plain.Auth{User: cfg.Username, Pass: cfg.Password}.AsMechanism(), nil
	},
	assets.MechanismSCRAMSHA256: func(_ Access, cfg assets.Config) (sasl.Mechanism, error) {
		return scram.Auth{User: cfg.Username, Pass: cfg.Password}.AsSha256Mechanism(), nil
	},
	assets.MechanismSCRAMSHA512: func(_ Access, cfg assets.Config) (sasl.Mechanism, error) {
		return scram.Auth{User: cfg.Username, Pass: cfg.Password}.AsSha512Mechanism(), nil
	},
	assets.MechanismGSSAPI: Access.kerberosMechanism,
	assets.MechanismAWSMSKIAM: func(_ Access, cfg assets.Config) (sasl.Mechanism, error) {
		return awsIAMMechanism(cfg)
	},
}

// SASLMechanisms lists the sasl_mechanism values this build supports, sorted.
func SASLMechanisms() []string {
	names := make([]string, 0, len(saslMechanisms))
	for n := range saslMechanisms {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SASLMechanism returns the SASL mechanism of the asset, or nil when its
// security protocol does not authenticate with SASL (PLAINTEXT, SSL).
//
// PLAIN and SCRAM-SHA-256/512 log in with username and password. The
// credentials are only used during the login on each new connection; they
// are never logged. An error is a *soarkafka.Error with code EINVALID
// naming sasl_mechanism (unknown or missing mechanism).
func (a Access) SASLMechanism(cfg assets.Config) (sasl.Mechanism, error) {
	if !cfg.SASL() {
		return nil, nil
	}
	if cfg.SASLMechanism == "" {
		return nil, fieldError("sasl_mechanism", "required with security_protocol %s; use one of %s", cfg.SecurityProtocol, strings.Join(SASLMechanisms(), ", "))
	}
	build, ok := saslMechanisms[strings.ToUpper(cfg.SASLMechanism)]
	if !ok {
		return nil, fieldError("sasl_mechanism", "%q is not supported; use one of %s", cfg.SASLMechanism, strings.Join(SASLMechanisms(), ", "))
	}
	return build(a, cfg)
}
