package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSCerts is a throwaway PKI for one test, generated in memory and written
// as PEM files into a t.TempDir(): a CA, a server certificate signed by it
// for the broker, and a client certificate signed by it for mutual TLS.
// The *File fields are what an asset's ca_cert, cert_file and key_file take.
type TLSCerts struct {
	Dir string // the temporary directory holding the files

	CAFile         string // CA certificate (PEM)
	ServerCertFile string // server certificate (PEM)
	ServerKeyFile  string // server private key (PKCS#8 PEM)
	ClientCertFile string // client certificate (PEM)
	ClientKeyFile  string // client private key (PKCS#8 PEM)

	CA         *x509.Certificate
	CAPool     *x509.CertPool // holds CA only
	ServerCert tls.Certificate
	ClientCert tls.Certificate

	requireClientCert bool
}

// TLSCertOption changes what NewTLSCerts generates.
type TLSCertOption func(*tlsCertOptions)

type tlsCertOptions struct {
	hosts             []string
	serverExpired     bool
	clientExpired     bool
	requireClientCert bool
	commonName        string
}

// TLSCertHosts sets the names the server certificate is valid for
// (IP addresses become IP SANs, the rest DNS SANs), overriding the default
// of 127.0.0.1 and localhost. kfake brokers listen on and advertise
// 127.0.0.1: a certificate for "localhost" alone fails hostname
// verification against them.
func TLSCertHosts(hosts ...string) TLSCertOption {
	return func(o *tlsCertOptions) { o.hosts = hosts }
}

// TLSCertServerExpired makes the server certificate one that expired an hour
// ago (and was valid for the day before).
func TLSCertServerExpired() TLSCertOption {
	return func(o *tlsCertOptions) { o.serverExpired = true }
}

// TLSCertClientExpired makes the client certificate one that expired an hour
// ago.
func TLSCertClientExpired() TLSCertOption {
	return func(o *tlsCertOptions) { o.clientExpired = true }
}

// TLSCertRequireClient makes ServerTLS demand and verify a client
// certificate signed by the CA (tls.RequireAndVerifyClientCert), as a broker
// with ssl.client.auth=required does. The default asks for none.
func TLSCertRequireClient() TLSCertOption {
	return func(o *tlsCertOptions) { o.requireClientCert = true }
}

// TLSCertCAName sets the CA's common name, overriding "soarkafka test CA",
// so two PKIs in one test are told apart in error messages.
func TLSCertCAName(name string) TLSCertOption {
	return func(o *tlsCertOptions) { o.commonName = name }
}

// NewTLSCerts generates a CA, a server and a client certificate (ECDSA
// P-256, valid from an hour ago for a day unless an expiry option says
// otherwise) and writes them into a new t.TempDir().
func NewTLSCerts(t testing.TB, opts ...TLSCertOption) *TLSCerts {
	t.Helper()
	o := tlsCertOptions{hosts: []string{"127.0.0.1", "localhost"}, commonName: "soarkafka test CA"}
	for _, opt := range opts {
		opt(&o)
	}
	now := time.Now()
	valid := func(expired bool) (time.Time, time.Time) {
		if expired {
			return now.Add(-25 * time.Hour), now.Add(-time.Hour)
		}
		return now.Add(-time.Hour), now.Add(24 * time.Hour)
	}

	caKey := newTLSKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          newSerial(t),
		Subject:               pkix.Name{CommonName: o.commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testenv: create CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("testenv: parse CA certificate: %v", err)
	}

	leaf := func(cn string, hosts []string, usage x509.ExtKeyUsage, expired bool) ([]byte, *ecdsa.PrivateKey) {
		key := newTLSKey(t)
		nb, na := valid(expired)
		tmpl := &x509.Certificate{
			SerialNumber: newSerial(t),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    nb,
			NotAfter:     na,
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("testenv: create %s certificate: %v", cn, err)
		}
		return der, key
	}
	serverDER, serverKey := leaf("kafka broker", o.hosts, x509.ExtKeyUsageServerAuth, o.serverExpired)
	clientDER, clientKey := leaf("soarkafka client", nil, x509.ExtKeyUsageClientAuth, o.clientExpired)

	dir := t.TempDir()
	c := &TLSCerts{
		Dir:               dir,
		CAFile:            filepath.Join(dir, "ca.pem"),
		ServerCertFile:    filepath.Join(dir, "server.pem"),
		ServerKeyFile:     filepath.Join(dir, "server-key.pem"),
		ClientCertFile:    filepath.Join(dir, "client.pem"),
		ClientKeyFile:     filepath.Join(dir, "client-key.pem"),
		CA:                ca,
		CAPool:            x509.NewCertPool(),
		requireClientCert: o.requireClientCert,
	}
	c.CAPool.AddCert(ca)
	writePEM(t, c.CAFile, "CERTIFICATE", caDER)
	writePEM(t, c.ServerCertFile, "CERTIFICATE", serverDER)
	writePEM(t, c.ServerKeyFile, "PRIVATE KEY", marshalTLSKey(t, serverKey))
	writePEM(t, c.ClientCertFile, "CERTIFICATE", clientDER)
	writePEM(t, c.ClientKeyFile, "PRIVATE KEY", marshalTLSKey(t, clientKey))

	if c.ServerCert, err = tls.LoadX509KeyPair(c.ServerCertFile, c.ServerKeyFile); err != nil {
		t.Fatalf("testenv: load server key pair: %v", err)
	}
	if c.ClientCert, err = tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile); err != nil {
		t.Fatalf("testenv: load client key pair: %v", err)
	}
	return c
}

// ServerTLS returns the listener configuration for a broker, for
// kfake.TLS: the server certificate, TLS 1.2 at least, and, with
// TLSCertRequireClient, a required client certificate signed by the CA.
func (c *TLSCerts) ServerTLS() *tls.Config {
	tc := &tls.Config{
		Certificates: []tls.Certificate{c.ServerCert},
		MinVersion:   tls.VersionTLS12,
	}
	if c.requireClientCert {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		tc.ClientCAs = c.CAPool
	}
	return tc
}

// ClientTLS returns a client configuration trusting the CA and presenting
// the client certificate, for a test's own kgo client (kgo.DialTLSConfig).
func (c *TLSCerts) ClientTLS() *tls.Config {
	return &tls.Config{
		RootCAs:      c.CAPool,
		Certificates: []tls.Certificate{c.ClientCert},
		MinVersion:   tls.VersionTLS12,
	}
}

func newTLSKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: generate key: %v", err)
	}
	return key
}

func marshalTLSKey(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testenv: marshal key: %v", err)
	}
	return der
}

func newSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("testenv: serial number: %v", err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testenv: write %s: %v", path, err)
	}
}
