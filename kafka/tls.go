package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"

	"github.com/youmark/pkcs8"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
)

// TLSConfig returns the TLS client configuration of the asset, or nil when
// its security protocol does not use TLS (PLAINTEXT, SASL_PLAINTEXT).
//
// Defaults: TLS 1.2 at least; the broker's certificate is verified against
// the CA in ca_cert or ca_pem, or the system roots when neither is given;
// the broker's host name is always verified (kgo sets ServerName per broker
// to the host in hosts, unless tls_server_name names the one to verify),
// unless insecure_skip_verify is set explicitly. With a client certificate
// and key (cert_file/key_file or cert_pem/key_pem) the client presents it
// (mutual TLS); an encrypted key is opened with key_password, PKCS#8
// ("ENCRYPTED PRIVATE KEY") or legacy PEM ("Proc-Type: 4,ENCRYPTED").
//
// The files are read now, by the server process, through the file policy
// (files.allowed_dirs). An error is a *soarkafka.Error with code EINVALID
// naming the field and what to fix, e.g. "ca_cert: file /x/ca.pem cannot
// be used: it is missing, unreadable, or outside files.allowed_dirs".
func (a Access) TLSConfig(cfg assets.Config) (*tls.Config, error) {
	if !cfg.TLS() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName,
		InsecureSkipVerify: cfg.InsecureSkipVerify}

	ca, err := a.pemOf("ca_cert", cfg.CACert, "ca_pem", cfg.CAPEM)
	if err != nil {
		return nil, err
	}
	if len(ca.pem) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca.pem) {
			return nil, fieldError(ca.field, "%s holds no PEM certificate; give the CA certificate that signed the broker certificates, PEM encoded (-----BEGIN CERTIFICATE-----)", ca.src)
		}
		tc.RootCAs = pool
	}

	cert, err := a.pemOf("cert_file", cfg.CertFile, "cert_pem", cfg.CertPEM)
	if err != nil {
		return nil, err
	}
	key, err := a.pemOf("key_file", cfg.KeyFile, "key_pem", cfg.KeyPEM)
	if err != nil {
		return nil, err
	}
	if len(cert.pem) > 0 || len(key.pem) > 0 {
		if len(cert.pem) == 0 {
			return nil, fieldError("cert_file", "required with %s: the client certificate of the private key (or cert_pem)", key.field)
		}
		if len(key.pem) == 0 {
			return nil, fieldError("key_file", "required with %s: the private key of the client certificate (or key_pem)", cert.field)
		}
		keyPEM, err := decryptKey(key.field, key.src, key.pem, cfg.KeyPassword)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(cert.pem, keyPEM)
		if err != nil {
			return nil, keyPairError(cert.field, cert.src, key.field, key.src, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// pemValue is PEM text from a file field or an inline field: the field it
// came from, and how messages name it (the path, or "the value").
type pemValue struct {
	field, src string
	pem        []byte
}

// pemOf reads the file of fileField when path is set, else takes the
// inline value of pemField.
func (a Access) pemOf(fileField, path, pemField, inline string) (pemValue, error) {
	if path == "" {
		return pemValue{field: pemField, src: "the value", pem: []byte(inline)}, nil
	}
	b, err := a.Files.ReadFile(fileField, path)
	return pemValue{field: fileField, src: path, pem: b}, err
}

// decryptKey returns the key PEM decrypted with password when it is
// encrypted, as is otherwise. An encrypted key without password, a wrong
// password, or a password for a key that is not encrypted are errors that
// say which.
func decryptKey(field, src string, keyPEM []byte, password string) ([]byte, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, fieldError(field, "%s holds no PEM private key; give the private key of the client certificate, PEM encoded", src)
	}
	switch {
	case block.Type == "ENCRYPTED PRIVATE KEY":
		if password == "" {
			return nil, fieldError("key_password", "required: %s %s is an encrypted PKCS#8 key", field, src)
		}
		key, err := pkcs8.ParsePKCS8PrivateKey(block.Bytes, []byte(password))
		if err != nil {
			return nil, fieldError("key_password", "does not open the encrypted PKCS#8 key in %s %s (%v); check the password", field, src, err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fieldError(field, "%s: %v", src, err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	//lint:ignore SA1019 legacy PEM encryption is what older Kafka tooling writes; it must still open
	case x509.IsEncryptedPEMBlock(block): //nolint:staticcheck
		if password == "" {
			return nil, fieldError("key_password", "required: %s %s is an encrypted PEM key (Proc-Type: 4,ENCRYPTED)", field, src)
		}
		der, err := x509.DecryptPEMBlock(block, []byte(password)) //nolint:staticcheck
		if err != nil {
			return nil, fieldError("key_password", "does not open the encrypted PEM key in %s %s (%v); check the password", field, src, err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der}), nil
	case password != "":
		return nil, fieldError("key_password", "is set but %s %s is not encrypted; remove key_password or give the encrypted key", field, src)
	}
	return keyPEM, nil
}

// keyPairError names the field at fault in an X509KeyPair error where it
// can: the standard library's messages say "certificate input" or "key
// input", not which file that was.
func keyPairError(certField, certSrc, keyField, keySrc string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "certificate input"):
		return fieldError(certField, "%s holds no PEM certificate (%v); give the client certificate, PEM encoded", certSrc, err)
	case strings.Contains(msg, "key input"), strings.Contains(msg, "private key"):
		if strings.Contains(msg, "does not match") {
			return fieldError(certField+"/"+keyField, "%v: %s %s is not the private key of %s %s", err, keyField, keySrc, certField, certSrc)
		}
		return fieldError(keyField, "%s holds no usable private key (%v); give the PEM private key of the client certificate", keySrc, err)
	}
	return fieldError(certField+"/"+keyField, "%v", err)
}

// fieldError is the EINVALID application error for a bad asset field; its
// message starts with the field so a user sees where to look.
func fieldError(field, format string, args ...any) *soarkafka.Error {
	return soarkafka.Errorf(soarkafka.EINVALID, field+": "+format, args...)
}
