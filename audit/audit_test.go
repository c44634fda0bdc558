package audit_test

import (
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/audit"
)

// X-Forwarded-For is believed only from a trusted proxy, hop by hop from
// the right, and a malformed hop stops the walk.
func TestClientAddress(t *testing.T) {
	trusted, err := audit.ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.7", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ peer, xff, want string }{
		{"203.0.113.1:5000", "198.51.100.1", "203.0.113.1"},                       // untrusted peer: header ignored
		{"10.1.2.3:443", "", "10.1.2.3"},                                          // trusted, nothing forwarded
		{"10.1.2.3:443", "198.51.100.1", "198.51.100.1"},                          // one trusted proxy
		{"10.1.2.3:443", "198.51.100.9, 198.51.100.1, 192.0.2.7", "198.51.100.1"}, // two proxies; a client-written first hop ignored
		{"[::1]:80", "10.9.9.9, 198.51.100.2", "198.51.100.2"},
		{"10.1.2.3:443", "198.51.100.1, not-an-ip", "10.1.2.3"},
		{"10.1.2.3:443", "10.0.0.5, 10.0.0.6", "10.0.0.5"}, // every hop a proxy: the leftmost
	} {
		if got := audit.ClientAddress(tt.peer, tt.xff, trusted); got != tt.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", tt.peer, tt.xff, got, tt.want)
		}
	}
	if _, err := audit.ParseTrustedProxies([]string{"10.0.0.0/8", "proxy.example.com"}); err == nil || !strings.Contains(err.Error(), "proxy.example.com") {
		t.Fatalf("a host name: %v", err)
	}
}
