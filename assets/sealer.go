package assets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/soarkafka/soarkafka"
)

// KeySize is the length of a secret key: AES-256.
const KeySize = 32

// sealedPrefix starts every sealed value, so that a stored document says
// which values are ciphertext and which key sealed them.
const sealedPrefix = "sealed:v1:"

// Sealer encrypts secret field values at rest with AES-256-GCM. Each sealed
// value carries the id of its key (the first 8 hex digits of the key's
// SHA-256), so that opening with another key fails with an error that says so
// instead of "message authentication failed".
type Sealer struct {
	aead  cipher.AEAD
	keyID string
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	sum := sha256.Sum256(key)
	return &Sealer{aead: aead, keyID: hex.EncodeToString(sum[:4])}, nil
}

// KeyID identifies the key without revealing it.
func (s *Sealer) KeyID() string { return s.keyID }

// Seal encrypts plaintext. The asset-independent field name is bound as
// additional data, so a sealed value moved to another field does not open.
func (s *Sealer) Seal(field, plaintext string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal %s: %w", field, err)
	}
	ct := s.aead.Seal(nonce, nonce, []byte(plaintext), []byte(field))
	return sealedPrefix + s.keyID + ":" + base64.RawStdEncoding.EncodeToString(ct), nil
}

// Open decrypts a value made by Seal for the same field.
func (s *Sealer) Open(field, sealed string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return "", fmt.Errorf("%s: stored value is not sealed", field)
	}
	keyID, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("%s: malformed sealed value", field)
	}
	if keyID != s.keyID {
		return "", &soarkafka.Error{Code: soarkafka.EINTERNAL, Message: fmt.Sprintf(
			"%s: sealed with secret key %s but the server runs with key %s; start the server with the secret key it was stored with (secret_key or the data directory's secret.key)",
			field, keyID, s.keyID)}
	}
	ct, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(ct) < s.aead.NonceSize() {
		return "", fmt.Errorf("%s: malformed sealed value", field)
	}
	pt, err := s.aead.Open(nil, ct[:s.aead.NonceSize()], ct[s.aead.NonceSize():], []byte(field))
	if err != nil {
		return "", fmt.Errorf("%s: sealed value does not open: %w", field, err)
	}
	return string(pt), nil
}

// IsSealed reports whether a stored value was made by Seal.
func IsSealed(v any) bool {
	s, ok := v.(string)
	return ok && strings.HasPrefix(s, sealedPrefix)
}

// ParseKey decodes a secret key given in configuration: 32 bytes as base64
// (standard or URL alphabet, padded or not) or as 64 hex digits.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("decodes to %d bytes, need %d (generate one with: head -c 32 /dev/urandom | base64)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64 or hex (generate one with: head -c 32 /dev/urandom | base64)")
}

// NewKey returns a fresh random key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate secret key: %w", err)
	}
	return k, nil
}
