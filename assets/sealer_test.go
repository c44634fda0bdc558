package assets_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/assets"
)

func newSealer(t *testing.T) *assets.Sealer {
	t.Helper()
	k, err := assets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := assets.NewSealer(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal("password", "hunter2-ü")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hunter2") || !assets.IsSealed(sealed) {
		t.Fatalf("sealed value %q leaks or is not marked", sealed)
	}
	again, _ := s.Seal("password", "hunter2-ü")
	if again == sealed {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
	got, err := s.Open("password", sealed)
	if err != nil || got != "hunter2-ü" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open("kerberos.password", sealed); err == nil {
		t.Fatal("a sealed value opened under another field name")
	}
	tampered := sealed[:len(sealed)-2] + "AA"
	if _, err := s.Open("password", tampered); err == nil {
		t.Fatal("tampered value opened")
	}
	if _, err := s.Open("password", "plain"); err == nil {
		t.Fatal("unsealed value opened")
	}
}

func TestOpenWithOtherKeyNamesBothKeys(t *testing.T) {
	a, b := newSealer(t), newSealer(t)
	sealed, _ := a.Seal("password", "x")
	_, err := b.Open("password", sealed)
	if err == nil || !strings.Contains(err.Error(), a.KeyID()) || !strings.Contains(err.Error(), b.KeyID()) {
		t.Fatalf("error %v should name both key ids", err)
	}
}

func TestParseKey(t *testing.T) {
	k := bytes.Repeat([]byte{7}, 32)
	for _, s := range []string{base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k), hex.EncodeToString(k), " " + hex.EncodeToString(k) + "\n"} {
		got, err := assets.ParseKey(s)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	if _, err := assets.ParseKey(base64.StdEncoding.EncodeToString(k[:16])); err == nil || !strings.Contains(err.Error(), "16 bytes") {
		t.Errorf("short key: %v", err)
	}
	if _, err := assets.ParseKey("not a key!"); err == nil {
		t.Error("garbage accepted")
	}
	if _, err := assets.NewSealer(k[:10]); err == nil {
		t.Error("NewSealer accepted a 10-byte key")
	}
}
