package kafka

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

func TestHostPolicyRules(t *testing.T) {
	t.Parallel()
	type dial struct {
		host string // as asked for
		ip   string // connected to; "" for the check before resolving
		port int
		want string // "" allowed, else the setting that refuses
	}
	for _, tc := range []struct {
		name            string
		allowed, denied []string
		dials           []dial
	}{{
		name: "no entries: nil policy, everything allowed",
		dials: []dial{
			{"127.0.0.1", "127.0.0.1", 9092, ""},
			{"169.254.169.254", "169.254.169.254", 80, ""},
		},
	}, {
		name:   "denied address, network, and name",
		denied: []string{"169.254.169.254", "127.0.0.0/8", "::1", "metadata.google.internal"},
		dials: []dial{
			{"169.254.169.254", "169.254.169.254", 80, SettingDeniedHosts},
			{"127.0.0.53", "127.0.0.53", 9092, SettingDeniedHosts},
			{"::1", "::1", 9092, SettingDeniedHosts},
			{"::ffff:127.0.0.1", "::ffff:127.0.0.1", 9092, SettingDeniedHosts}, // IPv4-mapped
			{"METADATA.google.internal.", "", 80, SettingDeniedHosts},          // by name, before resolving
			{"kafka.corp", "127.0.0.1", 9092, SettingDeniedHosts},              // resolved to a denied address
			{"kafka.corp", "", 9092, ""},                                       // the name alone is not denied
			{"kafka.corp", "10.1.2.3", 9092, ""},
		},
	}, {
		name:   "denied with ports",
		denied: []string{"10.0.0.0/8:22", "[fd00::/8]:6379", "[::1]:9092", "ssh.corp:22"},
		dials: []dial{
			{"10.1.2.3", "10.1.2.3", 22, SettingDeniedHosts},
			{"10.1.2.3", "10.1.2.3", 9092, ""},
			{"fd00::5", "fd00::5", 6379, SettingDeniedHosts},
			{"fd00::5", "fd00::5", 9092, ""},
			{"::1", "::1", 9092, SettingDeniedHosts},
			{"::1", "::1", 9093, ""},
			{"ssh.corp", "", 22, SettingDeniedHosts},
			{"ssh.corp", "10.9.9.9", 2222, ""},
		},
	}, {
		name:    "allowed names, wildcards and networks",
		allowed: []string{"kafka1.corp", "*.kafka.corp:9093", "kafka-*.prod.corp", "10.20.0.0/16:9092"},
		dials: []dial{
			{"kafka1.corp", "192.0.2.1", 9092, ""},   // by name, whatever it resolves to
			{"KAFKA1.CORP", "192.0.2.1", 1234, ""},   // names match without case; no port: any
			{"b1.kafka.corp", "192.0.2.1", 9093, ""}, // * is one label
			{"b1.kafka.corp", "192.0.2.1", 9092, SettingAllowedHosts},
			{"x.b1.kafka.corp", "192.0.2.1", 9093, SettingAllowedHosts}, // not two labels
			{"kafka-3.prod.corp", "192.0.2.1", 9092, ""},
			{"kafka-3.evil.prod.corp", "192.0.2.1", 9092, SettingAllowedHosts},
			{"10.20.5.5", "10.20.5.5", 9092, ""},
			{"10.20.5.5", "10.20.5.5", 22, SettingAllowedHosts},
			{"other.corp", "10.20.5.5", 9092, ""}, // by the address connected to
			{"other.corp", "10.21.5.5", 9092, SettingAllowedHosts},
			{"other.corp", "", 9092, ""}, // undecided until resolved
		},
	}, {
		name:    "denied wins over allowed",
		allowed: []string{"kafka1.corp", "10.0.0.0/8"},
		denied:  []string{"10.0.0.1"},
		dials: []dial{
			{"kafka1.corp", "10.0.0.1", 9092, SettingDeniedHosts},
			{"10.0.0.1", "10.0.0.1", 9092, SettingDeniedHosts},
			{"10.0.0.2", "10.0.0.2", 9092, ""},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := NewHostPolicy(tc.allowed, tc.denied)
			if err != nil {
				t.Fatal(err)
			}
			if (p == nil) != (len(tc.allowed)+len(tc.denied) == 0) {
				t.Errorf("policy = %v", p)
			}
			for _, d := range tc.dials {
				var ip netip.Addr
				if d.ip != "" {
					ip = netip.MustParseAddr(d.ip).Unmap()
				}
				addr := net.JoinHostPort(d.host, strconv.Itoa(d.port))
				err := p.check(addr, d.host, ip, d.port)
				var denied *HostDeniedError
				switch {
				case d.want == "" && err != nil:
					t.Errorf("%s (address %q): %v, want allowed", addr, d.ip, err)
				case d.want != "" && !errors.As(err, &denied):
					t.Errorf("%s (address %q): %v, want refused by %s", addr, d.ip, err, d.want)
				case d.want != "" && denied.Setting != d.want:
					t.Errorf("%s (address %q): refused by %s, want %s", addr, d.ip, denied.Setting, d.want)
				case d.want != "" && !strings.HasPrefix(err.Error(), "broker "+addr+" ") && !strings.HasPrefix(err.Error(), "broker "+addr+":"):
					t.Errorf("message %q does not start with the broker", err)
				}
			}
		})
	}
}

func TestHostPolicyBadEntries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		allowed, denied []string
		want            string
	}{
		{allowed: []string{"kafka:99999"}, want: `network.allowed_hosts: "kafka:99999": port "99999" must be a number from 1 to 65535`},
		{denied: []string{"[::1"}, want: `network.denied_hosts: "[::1": unclosed [`},
		{denied: []string{"http://x"}, want: `network.denied_hosts: "http://x": port "//x" must be a number`},
		{denied: []string{"a b"}, want: `network.denied_hosts: "a b": "a b" is not a host name, an address or a network`},
		{denied: []string{"kafka..corp"}, want: `network.denied_hosts: "kafka..corp": empty label`},
		{allowed: []string{"[::1]9092"}, want: `network.allowed_hosts: "[::1]9092": "9092" after ]`},
	} {
		_, err := NewHostPolicy(tc.allowed, tc.denied)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("NewHostPolicy(%q, %q) = %v, want %q", tc.allowed, tc.denied, err, tc.want)
		}
	}
}

// The address connected to is checked after resolution: a name that
// resolves to a denied address is refused at dial time, with the address
// named; an allowed one connects.
func TestHostPolicyDialChecksResolvedAddress(t *testing.T) {
	t.Parallel()
	_, port, _ := net.SplitHostPort(testenv.ServeTCP(t, func(net.Conn) {}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	denied, _ := NewHostPolicy(nil, []string{"127.0.0.0/8", "::1"})
	_, err := denied.DialContext(ctx, "tcp", "localhost:"+port)
	var de *HostDeniedError
	if !errors.As(err, &de) || de.Setting != SettingDeniedHosts || de.Address == "" {
		t.Fatalf("dial localhost with loopback denied: %v", err)
	}
	if want := "broker localhost:" + port + " (address "; !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "): not allowed by network.denied_hosts") {
		t.Errorf("message %q", err)
	}

	// Allowed by name, so it connects whatever it resolves to.
	byName, _ := NewHostPolicy([]string{"localhost:" + port}, nil)
	c, err := byName.DialContext(ctx, "tcp", "localhost:"+port)
	if err != nil {
		t.Fatalf("dial allowed by name: %v", err)
	}
	c.Close()
	// Another port of the same name is not allowed.
	if _, err := byName.DialContext(ctx, "tcp", "127.0.0.1:"+port); !errors.As(err, &de) || de.Setting != SettingAllowedHosts {
		t.Errorf("dial by address with only the name allowed: %v", err)
	}

	// CheckResolved (for the KDCs) refuses the same way.
	if err := denied.CheckResolved(ctx, "localhost:88"); !errors.As(err, &de) || de.Setting != SettingDeniedHosts {
		t.Errorf("CheckResolved: %v", err)
	}
}

func TestKafkaConnRefusesNonKafkaSizes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reply string
		ok    bool
	}{
		{"text banner", "INFO {\"server_id\":\"x\"}\r\n", false},
		{"HTTP", "HTTP/1.1 400 Bad Request\r\n\r\n", false},
		{"too small for a correlation id", "\x00\x00\x00\x02ab", false},
		{"negative", "\xff\xff\xff\xf0abcd", false},
		{"a Kafka-sized frame", "\x00\x00\x00\x04\x00\x00\x00\x01", true},
		{"a TLS alert", "\x15\x03\x03\x00\x02\x02\x28", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, server := net.Pipe()
			defer client.Close()
			go func() { server.Write([]byte(tc.reply)); server.Close() }()
			kc := &kafkaConn{Conn: client, broker: "b:1"}
			buf := make([]byte, 4096)
			n, err := kc.Read(buf)
			if tc.ok {
				if err != nil || n != 4 {
					t.Fatalf("read = %d, %v", n, err)
				}
				return
			}
			var nk *NotKafkaError
			var te *TLSExpectedError
			if tc.name == "a TLS alert" {
				if !errors.As(err, &te) || n != 0 {
					t.Fatalf("read = %d, %v; want TLSExpectedError and no bytes", n, err)
				}
				return
			}
			if !errors.As(err, &nk) || n != 0 {
				t.Fatalf("read = %d, %v; want NotKafkaError and no bytes", n, err)
			}
			if _, err2 := kc.Read(buf); !errors.As(err2, &nk) {
				t.Errorf("second read: %v", err2)
			}
		})
	}
}

// A plaintext client at a TLS listener that answers with an alert (as a
// Java broker's TLS engine does for bytes that are not TLS) is told to use
// TLS, not that the broker is not Kafka.
func TestPlaintextClientAtTLSListener(t *testing.T) {
	t.Parallel()
	addr := testenv.ServeTCP(t, func(c net.Conn) {
		c.Read(make([]byte, 512))
		c.Write([]byte("\x15\x03\x03\x00\x02\x02\x0a")) // fatal alert: unexpected_message
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := Access{}.NewClient(assets.Config{Hosts: addr, Topic: "t", SecurityProtocol: assets.ProtocolPlaintext}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	err = cl.Ping(ctx)
	var te *TLSExpectedError
	if !errors.As(err, &te) {
		t.Fatalf("ping: %v, want TLSExpectedError", err)
	}
	if want := "broker " + addr + ": the broker answered with TLS: its listener requires TLS"; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q", err)
	}
}
