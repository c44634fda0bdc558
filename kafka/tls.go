package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
)

// TLSConfig returns the TLS client configuration of the asset, or nil when
// its security protocol does not use TLS (PLAINTEXT, SASL_PLAINTEXT).
//
// Defaults: TLS 1.2 at least; the broker's certificate is verified against
// the CA in ca_cert, or the system roots when ca_cert is empty; the
// broker's host name is always verified (the caller or kgo sets ServerName
// per broker; this function never sets InsecureSkipVerify). With cert_file
// and key_file the client presents that certificate (mutual TLS).
//
// The files are read now, by the server process. An error is a
// *soarkafka.Error with code EINVALID naming the field and what to fix,
// e.g. "ca_cert: file /x/ca.pem not readable: permission denied".
func TLSConfig(cfg assets.Config) (*tls.Config, error) {
	if !cfg.TLS() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}

	if cfg.CACert != "" {
		pem, err := readPEMFile("ca_cert", cfg.CACert)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fieldError("ca_cert", "%s holds no PEM certificate; give the CA certificate that signed the broker certificates, PEM encoded (-----BEGIN CERTIFICATE-----)", cfg.CACert)
		}
		tc.RootCAs = pool
	}

	if cfg.CertFile != "" || cfg.KeyFile != "" {
		if cfg.CertFile == "" {
			return nil, fieldError("cert_file", "required with key_file: the client certificate of the private key")
		}
		if cfg.KeyFile == "" {
			return nil, fieldError("key_file", "required with cert_file: the private key of the client certificate")
		}
		certPEM, err := readPEMFile("cert_file", cfg.CertFile)
		if err != nil {
			return nil, err
		}
		keyPEM, err := readPEMFile("key_file", cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, keyPairError(cfg, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// keyPairError names the file at fault in an X509KeyPair error where it
// can: the standard library's messages say "certificate input" or "key
// input", not which file that was.
func keyPairError(cfg assets.Config, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "certificate input"):
		return fieldError("cert_file", "%s holds no PEM certificate (%v); give the client certificate, PEM encoded", cfg.CertFile, err)
	case strings.Contains(msg, "key input"), strings.Contains(msg, "private key"):
		if strings.Contains(msg, "does not match") {
			return fieldError("cert_file/key_file", "%v: key_file %s is not the private key of cert_file %s", err, cfg.KeyFile, cfg.CertFile)
		}
		return fieldError("key_file", "%s holds no usable private key (%v); give the unencrypted PEM private key of cert_file", cfg.KeyFile, err)
	}
	return fieldError("cert_file/key_file", "%v", err)
}

// readPEMFile reads a file named by an asset field and words a failure the
// way a user can act on: the field, the path, and the reason alone
// ("permission denied", "no such file or directory").
func readPEMFile(field, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		reason := err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			reason = pe.Err
		}
		return nil, fieldError(field, "file %s not readable: %v", path, reason)
	}
	return b, nil
}

// fieldError is the EINVALID application error for a bad asset field; its
// message starts with the field so a user sees where to look.
func fieldError(field, format string, args ...any) *soarkafka.Error {
	return soarkafka.Errorf(soarkafka.EINVALID, field+": "+format, args...)
}
