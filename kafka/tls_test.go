package kafka_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/youmark/pkcs8"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// clientKey returns the client key of certs, parsed.
func clientKey(t *testing.T, certs *testenv.TLSCerts) any {
	t.Helper()
	block, _ := pem.Decode([]byte(readFile(t, certs.ClientKeyFile)))
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// Inline PEM values work as the files do; an encrypted key opens with
// key_password, as PKCS#8 and as legacy PEM; tls_server_name and
// insecure_skip_verify reach the configuration.
func TestTLSConfigInlineAndEncryptedKeys(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLSCerts(t)
	key := clientKey(t, certs)

	encPKCS8, err := pkcs8.MarshalPrivateKey(key, []byte("s3cret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8PEM := string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: encPKCS8}))
	//lint:ignore SA1019 legacy encrypted PEM is what the feature opens
	legacy, err := x509.EncryptPEMBlock(rand.Reader, "PRIVATE KEY", pemBytes(t, certs.ClientKeyFile), []byte("s3cret"), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	legacyPEM := string(pem.EncodeToMemory(legacy))
	legacyFile := filepath.Join(t.TempDir(), "legacy-key.pem")
	if err := os.WriteFile(legacyFile, []byte(legacyPEM), 0o600); err != nil {
		t.Fatal(err)
	}

	for name, doc := range map[string]map[string]any{
		"inline":              {"ca_pem": readFile(t, certs.CAFile), "cert_pem": readFile(t, certs.ClientCertFile), "key_pem": readFile(t, certs.ClientKeyFile)},
		"pkcs8 encrypted":     {"ca_cert": certs.CAFile, "cert_file": certs.ClientCertFile, "key_pem": pkcs8PEM, "key_password": "s3cret"},
		"legacy PEM, file":    {"ca_cert": certs.CAFile, "cert_pem": readFile(t, certs.ClientCertFile), "key_file": legacyFile, "key_password": "s3cret"},
		"server name, verify": {"ca_pem": readFile(t, certs.CAFile), "cert_file": certs.ClientCertFile, "key_file": certs.ClientKeyFile, "tls_server_name": "broker.internal"},
	} {
		t.Run(name, func(t *testing.T) {
			doc["use_ssl"] = true
			tc, err := tempAccess(t).TLSConfig(decodeConfig(t, doc))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.RootCAs.Equal(certs.CAPool) || len(tc.Certificates) != 1 || !bytes.Equal(tc.Certificates[0].Certificate[0], certs.ClientCert.Certificate[0]) {
				t.Fatalf("config does not hold the CA and the client certificate")
			}
			if tc.ServerName != map[bool]string{true: "broker.internal"}[name == "server name, verify"] || tc.InsecureSkipVerify || tc.MinVersion != tls.VersionTLS12 {
				t.Errorf("ServerName %q, InsecureSkipVerify %v, MinVersion %x", tc.ServerName, tc.InsecureSkipVerify, tc.MinVersion)
			}
		})
	}

	tc, err := tempAccess(t).TLSConfig(decodeConfig(t, map[string]any{"use_ssl": true, "insecure_skip_verify": true}))
	if err != nil || !tc.InsecureSkipVerify {
		t.Fatalf("insecure_skip_verify: %+v, %v", tc, err)
	}

	for _, tt := range []struct {
		name string
		doc  map[string]any
		want string
	}{
		{"wrong PKCS#8 password", map[string]any{"cert_file": certs.ClientCertFile, "key_pem": pkcs8PEM, "key_password": "nope"},
			"key_password: does not open the encrypted PKCS#8 key in key_pem the value"},
		{"PKCS#8 without password", map[string]any{"cert_file": certs.ClientCertFile, "key_pem": pkcs8PEM},
			"key_password: required: key_pem the value is an encrypted PKCS#8 key"},
		{"wrong legacy password", map[string]any{"cert_file": certs.ClientCertFile, "key_file": legacyFile, "key_password": "nope"},
			"key_password: does not open the encrypted PEM key in key_file " + legacyFile},
		{"legacy without password", map[string]any{"cert_file": certs.ClientCertFile, "key_file": legacyFile},
			"key_password: required: key_file " + legacyFile + " is an encrypted PEM key (Proc-Type: 4,ENCRYPTED)"},
		{"password for a plain key", map[string]any{"cert_file": certs.ClientCertFile, "key_file": certs.ClientKeyFile, "key_password": "x"},
			"key_password: is set but key_file " + certs.ClientKeyFile + " is not encrypted"},
		{"inline CA without PEM", map[string]any{"ca_pem": "not pem"}, "ca_pem: the value holds no PEM certificate"},
		{"inline key of another certificate", map[string]any{"cert_pem": readFile(t, certs.ClientCertFile), "key_pem": readFile(t, certs.ServerKeyFile)},
			"cert_pem/key_pem: tls: private key does not match public key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := map[string]any{"use_ssl": true}
			for k, v := range tt.doc {
				doc[k] = v
			}
			_, err := tempAccess(t).TLSConfig(decodeConfig(t, doc))
			wantInvalid(t, err, tt.want, true)
		})
	}
}

func pemBytes(t *testing.T, path string) []byte {
	t.Helper()
	block, _ := pem.Decode([]byte(readFile(t, path)))
	return block.Bytes
}
