package assets

import (
	"strings"
	"testing"
)

// Each block validates itself: a bad block run through its own validator
// reports errors on its own fields only, so a block's rules are found (and
// changed) in one place.
func TestEachBlockValidatorNamesOnlyItsOwnFields(t *testing.T) {
	for _, tc := range []struct {
		block string
		run   func(*fieldErrors)
	}{
		{"kerberos.", func(e *fieldErrors) {
			k := Kerberos{Keytab: "not base64!", Password: "x", Realm: "R }"}
			k.validate(MechanismGSSAPI, true, e)
		}},
		{"kerberos.", func(e *fieldErrors) {
			k := Kerberos{Principal: "p", ServiceName: "other"}
			k.validate(MechanismPlain, true, e)
			k.validateUnused(MechanismPlain, e)
		}},
		{"aws_iam.", func(e *fieldErrors) {
			a := AWSIAM{Region: "BAD", AccessKeyID: "AK", Profile: "p", AssumeRole: "x"}
			a.validate(MechanismAWSMSKIAM, true, e)
		}},
		{"aws_iam.", func(e *fieldErrors) {
			a := AWSIAM{Region: "eu-west-1", SessionName: "s"}
			a.validate(MechanismGSSAPI, true, e)
			a.validateUnused(MechanismGSSAPI, e)
		}},
		{"producer.", func(e *fieldErrors) { (&Producer{Idempotent: true, Acks: "1"}).validate(e) }},
		{"ingest.", func(e *fieldErrors) { (&Ingest{DeadLetterTopic: "t"}).validate("t", e) }},
		{"delivery.", func(e *fieldErrors) {
			d := Delivery{Mode: DeliveryPush, Target: TargetSplunkSOAR, Username: "u", CAPEM: "x"}
			d.validate(e)
			d.validateUnused(e)
		}},
		{"delivery.", func(e *fieldErrors) {
			d := Delivery{Mode: DeliveryPush, Target: TargetXSOARWebhook, AssetID: 3, VerifyTLS: true}
			d.validate(e)
			d.validateUnused(e)
		}},
	} {
		var errs fieldErrors
		tc.run(&errs)
		if len(errs) == 0 {
			t.Fatalf("block %s: no error for a bad block", tc.block)
		}
		for _, fe := range errs {
			if !strings.HasPrefix(fe.Field, tc.block) {
				t.Errorf("block %s reported %s: %s", tc.block, fe.Field, fe.Message)
			}
			if _, ok := FieldByName(fe.Field); !ok {
				t.Errorf("block %s reported %s, not a registry field", tc.block, fe.Field)
			}
		}
	}
	// The top-level TLS and SASL settings keep to their fields too.
	tlsFields := map[string]bool{"cert_file": true, "key_file": true, "ca_cert": true, "cert_pem": true, "key_pem": true,
		"ca_pem": true, "key_password": true, "tls_server_name": true, "insecure_skip_verify": true}
	var errs fieldErrors
	c := Config{SecurityProtocol: ProtocolPlaintext, CertFile: "/c", CertPEM: "C", KeyPassword: "x"}
	c.validateTLS(&errs)
	if len(errs) == 0 {
		t.Fatal("tls: no error for a bad block")
	}
	for _, fe := range errs {
		if !tlsFields[fe.Field] {
			t.Errorf("tls reported %s: %s", fe.Field, fe.Message)
		}
	}
	errs = nil
	c = Config{SecurityProtocol: ProtocolSASLSSL, SASLMechanism: MechanismPlain}
	c.validateSASL(&errs)
	if len(errs) != 2 || errs[0].Field != "username" || errs[1].Field != "password" {
		t.Errorf("sasl errors %v, want username and password", errs)
	}
}
