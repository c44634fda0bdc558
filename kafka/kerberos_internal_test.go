package kafka

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

// dnsServer answers A and AAAA queries for alias with a CNAME to target
// (and target's A record 127.0.0.1), over UDP on loopback: a real DNS
// exchange for Go's own resolver.
func dnsServer(t *testing.T, alias, target string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			b.EnableCompression()
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			if strings.EqualFold(q.Name.String(), alias) {
				b.CNAMEResource(dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeCNAME, Class: dnsmessage.ClassINET, TTL: 60},
					dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target)})
				if q.Type == dnsmessage.TypeA {
					b.AResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(target), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
						dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
				}
			}
			msg, err := b.Finish()
			if err == nil {
				pc.WriteTo(msg, addr)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// kerberos.canonicalize_hostname asks for the ticket of the broker's
// canonical name: with a KDC that knows only kafka/broker.canonical.test,
// a broker reached as alias.test (a CNAME to it) is logged in to only when
// the name is canonicalised.
func TestKerberosCanonicalizeHostname(t *testing.T) {
	kdc := testenv.NewKDC(t)
	kdc.AddUser("alice", "alice-pw")
	kdc.AddService("kafka/broker.canonical.test")
	addr := dnsServer(t, "alias.test.", "broker.canonical.test.")
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}

	cfg, err := assets.Decode(map[string]any{"hosts": "alias.test:9092", "topic": "t", "use_kerberos": true,
		"kerberos": map[string]any{"principal": "alice", "password": "alice-pw", "krb5_conf": kdc.Krb5Conf()}}, assets.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	asGiven, err := Access{}.kerberosMechanism(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := asGiven.Authenticate(ctx, "alias.test:9092"); err == nil || !strings.Contains(err.Error(), "KDC_ERR_S_PRINCIPAL_UNKNOWN") {
		t.Fatalf("host as given: %v, want the KDC not to know kafka/alias.test", err)
	}

	inner, err := Access{}.kerberosMechanism(cfg)
	if err != nil {
		t.Fatal(err)
	}
	canonical := canonicalHost{Mechanism: inner, resolver: resolver}
	defer canonical.Close()
	if _, token, err := canonical.Authenticate(ctx, "alias.test:9092"); err != nil || len(token) == 0 {
		t.Fatalf("canonicalised: %v, want a ticket for kafka/broker.canonical.test", err)
	}
}
