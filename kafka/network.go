package kafka

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Settings whose entries a HostPolicy holds, as its refusals name them.
const (
	SettingAllowedHosts = "network.allowed_hosts"
	SettingDeniedHosts  = "network.denied_hosts"
)

// HostPolicy decides which addresses the Kafka clients of this package may
// connect to: the brokers of hosts, the brokers a cluster advertises, the
// probes of test connectivity. A nil *HostPolicy allows every address.
//
// An entry is one of
//
//	host             a host name: kafka1.corp.example
//	*.corp.example   a host name where * stands for any part of one label
//	10.1.2.3         an address; ::1 for IPv6
//	10.0.0.0/8       a network (CIDR); fd00::/8 for IPv6
//
// each optionally followed by :port (a network or an IPv6 address then in
// brackets: 10.0.0.0/8:9092, [::1]:9092, [fd00::/8]:9092); without a port
// the entry holds for every port. Names match without regard to case.
//
// A dial is refused when a denied entry matches the host name asked for,
// or the address actually connected to (checked in the dialer's Control
// hook, after name resolution, so a name that resolves, or is made to
// resolve, to a denied address is refused); denied wins over allowed. With
// allowed entries, a dial must match one of them: by the name asked for
// (the name is then trusted with whatever it resolves to, minus denied
// addresses) or by the address connected to.
type HostPolicy struct {
	allowed, denied []hostRule
}

type hostRule struct {
	name   string       // lower case, may hold *; "" for an address rule
	prefix netip.Prefix // address rules
	port   int          // 0: any port
}

// NewHostPolicy parses the entries of network.allowed_hosts and
// network.denied_hosts. It returns nil (every address allowed) when both
// are empty. An error names the setting and the entry.
func NewHostPolicy(allowed, denied []string) (*HostPolicy, error) {
	p := &HostPolicy{}
	var problems []string
	for _, s := range []struct {
		setting string
		entries []string
		rules   *[]hostRule
	}{{SettingAllowedHosts, allowed, &p.allowed}, {SettingDeniedHosts, denied, &p.denied}} {
		for _, e := range s.entries {
			if strings.TrimSpace(e) == "" {
				continue
			}
			r, err := parseHostRule(e)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %q: %v", s.setting, e, err))
				continue
			}
			*s.rules = append(*s.rules, r)
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	if len(p.allowed) == 0 && len(p.denied) == 0 {
		return nil, nil
	}
	return p, nil
}

const hostRuleForms = "write host, *.domain, an address or a CIDR network, each optionally with :port (an IPv6 address or network in brackets then: [::1]:9092)"

func parseHostRule(entry string) (hostRule, error) {
	s := strings.TrimSpace(entry)
	var r hostRule
	hostPart := s
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return r, fmt.Errorf("unclosed [; %s", hostRuleForms)
		}
		hostPart = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return r, fmt.Errorf("%q after ]; %s", rest, hostRuleForms)
			}
			port, err := parsePort(rest[1:])
			if err != nil {
				return r, err
			}
			r.port = port
		}
	} else if strings.Count(s, ":") == 1 {
		h, p, _ := strings.Cut(s, ":")
		port, err := parsePort(p)
		if err != nil {
			return r, err
		}
		hostPart, r.port = h, port
	}
	// Two or more colons outside brackets: an IPv6 address or network
	// without a port.
	if pfx, err := netip.ParsePrefix(hostPart); err == nil {
		r.prefix = pfx.Masked()
		if r.prefix.Addr().Is4In6() {
			r.prefix = netip.PrefixFrom(r.prefix.Addr().Unmap(), r.prefix.Bits()-96)
		}
		return r, nil
	}
	if a, err := netip.ParseAddr(hostPart); err == nil {
		a = a.Unmap().WithZone("")
		r.prefix = netip.PrefixFrom(a, a.BitLen())
		return r, nil
	}
	name := strings.TrimSuffix(strings.ToLower(hostPart), ".")
	if name == "" {
		return r, fmt.Errorf("no host; %s", hostRuleForms)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return r, fmt.Errorf("empty label in the host name; %s", hostRuleForms)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '*') {
				return r, fmt.Errorf("%q is not a host name, an address or a network; %s", hostPart, hostRuleForms)
			}
		}
	}
	r.name = name
	return r, nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q must be a number from 1 to 65535", s)
	}
	return p, nil
}

// matchName reports whether host (lower case, no trailing dot) matches the
// rule's name, label by label.
func (r hostRule) matchName(host string) bool {
	if r.name == "" || host == "" {
		return false
	}
	if r.name == host {
		return true
	}
	if !strings.Contains(r.name, "*") {
		return false
	}
	want, got := strings.Split(r.name, "."), strings.Split(host, ".")
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if ok, _ := path.Match(want[i], got[i]); !ok {
			return false
		}
	}
	return true
}

func (r hostRule) matches(host string, ip netip.Addr, port int) bool {
	if r.port != 0 && r.port != port {
		return false
	}
	if r.name != "" {
		return r.matchName(host)
	}
	return ip.IsValid() && r.prefix.Contains(ip)
}

// HostDeniedError is a dial this server's network policy refused. It names
// the broker and the setting that refused it, never more of the policy.
type HostDeniedError struct {
	Broker  string // host:port as asked for
	Address string // the address refused, when it is not Broker's host itself
	Setting string // SettingAllowedHosts or SettingDeniedHosts
}

func (e *HostDeniedError) Error() string {
	if e.Address != "" {
		return fmt.Sprintf("broker %s (address %s): not allowed by %s", e.Broker, e.Address, e.Setting)
	}
	return fmt.Sprintf("broker %s: not allowed by %s", e.Broker, e.Setting)
}

// check refuses host:port (addr as asked for) connecting to ip; with ip
// not valid, it checks the name alone, before anything is resolved: only
// a denied name can refuse then.
func (p *HostPolicy) check(addr, host string, ip netip.Addr, port int) error {
	if p == nil {
		return nil
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		name, ip = "", a.Unmap().WithZone("") // an address literal is not a name
	}
	refused := func(setting string) error {
		e := &HostDeniedError{Broker: addr, Setting: setting}
		if ip.IsValid() && ip.String() != host {
			e.Address = ip.String()
		}
		return e
	}
	for _, r := range p.denied {
		if r.matches(name, ip, port) {
			return refused(SettingDeniedHosts)
		}
	}
	if len(p.allowed) == 0 || !ip.IsValid() {
		return nil
	}
	for _, r := range p.allowed {
		if r.matches(name, ip, port) {
			return nil
		}
	}
	return refused(SettingAllowedHosts)
}

// CheckResolved refuses addr (host:port) when its name, or any address the
// name resolves to now, is refused. It is for connections this package
// does not make itself (the Kerberos KDCs), where the address connected to
// cannot be checked at connect time.
func (p *HostPolicy) CheckResolved(ctx context.Context, addr string) error {
	if p == nil {
		return nil
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	port, _ := strconv.Atoi(portText)
	if err := p.check(addr, host, netip.Addr{}, port); err != nil {
		return err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, ip := range ips {
		if err := p.check(addr, host, ip.Unmap(), port); err != nil {
			return err
		}
	}
	return nil
}

// DialContext connects to addr over TCP if the policy allows it: the name
// is checked before it is resolved, and each address the dialer tries is
// checked just before it connects.
func (p *HostPolicy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("broker %s: %w", addr, err)
	}
	port, _ := strconv.Atoi(portText)
	if err := p.check(addr, host, netip.Addr{}, port); err != nil {
		return nil, err
	}
	d := net.Dialer{}
	if p != nil {
		d.ControlContext = func(_ context.Context, _, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &HostDeniedError{Broker: addr, Address: address, Setting: SettingDeniedHosts}
			}
			return p.check(addr, host, ap.Addr().Unmap().WithZone(""), port)
		}
	}
	conn, err := d.DialContext(ctx, network, addr)
	var denied *HostDeniedError
	if errors.As(err, &denied) {
		return nil, denied // not wrapped in "dial tcp ...": the message says it all
	}
	return conn, err
}

// NotKafkaError is a peer whose answer to a Kafka request is not a Kafka
// response. It carries none of the peer's bytes: a port scanned through a
// broker address must not leak what the service behind it says.
type NotKafkaError struct{ Broker string }

func (e *NotKafkaError) Error() string {
	return fmt.Sprintf("broker %s: not a Kafka broker: its answer is not a Kafka response (check the port in hosts)", e.Broker)
}

// TLSExpectedError is a plaintext client whose broker answered with TLS
// (a TLS alert or handshake record): the listener wants TLS.
type TLSExpectedError struct{ Broker string }

func (e *TLSExpectedError) Error() string {
	return fmt.Sprintf("broker %s: the broker answered with TLS: its listener requires TLS (set use_ssl to true, or security_protocol to SSL or SASL_SSL)", e.Broker)
}

// TLSNotSpokenError is a TLS handshake with a port that does not speak
// TLS: its answer is not TLS, or it answers plaintext Kafka.
type TLSNotSpokenError struct {
	Broker    string
	Plaintext string // the security protocol without TLS to suggest
}

func (e *TLSNotSpokenError) Error() string {
	return fmt.Sprintf("TLS handshake with broker %s failed: %s (%s)", e.Broker, TLSNotSpoken, e.Hint())
}

// TLSNotSpoken is what a TLSNotSpokenError says of the broker.
const TLSNotSpoken = "the broker does not speak TLS on this port"

// Hint is the fix of a TLSNotSpokenError.
func (e *TLSNotSpokenError) Hint() string {
	return fmt.Sprintf("use security_protocol %s with use_ssl false, or the broker's TLS port", e.Plaintext)
}

// TLSHandshakeError is any other failed TLS handshake with a broker; it
// wraps the cause (certificate verification, an alert, a timeout).
type TLSHandshakeError struct {
	Broker string
	Err    error
}

func (e *TLSHandshakeError) Error() string {
	return fmt.Sprintf("TLS handshake with broker %s failed: %v", e.Broker, e.Err)
}

func (e *TLSHandshakeError) Unwrap() error { return e.Err }

// Bounds of a response's size prefix. The first response on a connection
// answers ApiVersions or a SASL handshake, a few KiB; any later one is
// bounded by kgo's default BrokerMaxReadBytes, past which kgo would refuse
// it with an error that prints the four bytes as a number.
const (
	maxFirstResponse = 1 << 20
	maxResponse      = 100 << 20
)

// kafkaConn is a broker connection that checks each response's size
// prefix before kgo sees it: a peer whose bytes cannot be a Kafka response
// fails the read with NotKafkaError, and none of its bytes reach kgo (whose
// errors and logs would echo them).
type kafkaConn struct {
	net.Conn
	broker  string
	frames  int
	body    int64 // bytes of the current response not yet read
	pending []byte
	hdr     [4]byte
	err     error
}

func (c *kafkaConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.body == 0 {
		if _, err := io.ReadFull(c.Conn, c.hdr[:]); err != nil {
			return 0, err
		}
		size := int64(int32(binary.BigEndian.Uint32(c.hdr[:])))
		limit, least := int64(maxResponse), int64(0)
		if c.frames == 0 {
			limit, least = maxFirstResponse, 4 // at least a correlation id
		}
		if size < least || size > limit {
			c.err = &NotKafkaError{Broker: c.broker}
			// A TLS record (alert 21, handshake 22, version 3.x) first:
			// saying so is what the user needs, and quotes nothing.
			if c.frames == 0 && (c.hdr[0] == 21 || c.hdr[0] == 22) && c.hdr[1] == 3 {
				c.err = &TLSExpectedError{Broker: c.broker}
			}
			return 0, c.err
		}
		c.frames++
		c.body = size
		n := copy(p, c.hdr[:])
		c.pending = c.hdr[n:]
		return n, nil
	}
	if int64(len(p)) > c.body {
		p = p[:c.body]
	}
	n, err := c.Conn.Read(p)
	c.body -= int64(n)
	return n, err
}

// brokerDialer returns the dial function of a client: TCP through the host
// policy, the TLS handshake when tc is set, both within timeout (or the
// context's deadline, if sooner), and the connection wrapped in kafkaConn.
func (a Access) brokerDialer(tc *tls.Config, plaintext string, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		conn, err := a.Hosts.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tc != nil {
			c := tc.Clone()
			if c.ServerName == "" {
				c.ServerName, _, _ = net.SplitHostPort(addr)
			}
			tlsConn := tls.Client(conn, c)
			if err := tlsConn.HandshakeContext(dctx); err != nil {
				conn.Close()
				return nil, a.tlsError(ctx, addr, plaintext, err, timeout)
			}
			conn = tlsConn
		}
		return &kafkaConn{Conn: conn, broker: addr}, nil
	}
}

// tlsError words a failed TLS handshake with addr. An answer that is not
// TLS, or a port that answers plaintext Kafka where the handshake got no
// answer or a closed connection, is TLSNotSpokenError; anything else keeps
// its cause.
func (a Access) tlsError(ctx context.Context, addr, plaintext string, err error, timeout time.Duration) error {
	var record tls.RecordHeaderError
	if errors.As(err, &record) {
		return &TLSNotSpokenError{Broker: addr, Plaintext: plaintext}
	}
	// The probe runs past the dial's deadline (the handshake took all of
	// it when the port said nothing), but not past a cancellation.
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) && !isRemoteAlert(err) && !errors.Is(ctx.Err(), context.Canceled) {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(timeout, time.Second))
		defer cancel()
		if a.SpeaksPlaintextKafka(pctx, addr) {
			return &TLSNotSpokenError{Broker: addr, Plaintext: plaintext}
		}
	}
	return &TLSHandshakeError{Broker: addr, Err: err}
}

func isRemoteAlert(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "remote error" || strings.Contains(err.Error(), "remote error: tls:")
}

// SpeaksPlaintextKafka reports whether addr answers an ApiVersions request
// sent in plaintext with a Kafka response: the port a TLS client found
// silent or closing is then a plaintext listener.
func (a Access) SpeaksPlaintextKafka(ctx context.Context, addr string) bool {
	conn, err := a.Hosts.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	_, err = roundTrip(&kafkaConn{Conn: conn, broker: addr}, req)
	return err == nil
}

// roundTrip writes one request with a non-flexible header on conn and reads
// its response. It is for probes that run before or beside a kgo client
// (ApiVersions v0, SASLHandshake v1), not for general use. conn should be
// one of this package's dials; an answer that is not a Kafka response is a
// NotKafkaError, which quotes none of it.
func roundTrip(conn net.Conn, req kmsg.Request) (kmsg.Response, error) {
	const corr = 1
	buf := kmsg.NewRequestFormatter(kmsg.FormatterClientID(ClientID)).AppendRequest(nil, req, corr)
	if _, err := conn.Write(buf); err != nil {
		return nil, err
	}
	broker := conn.RemoteAddr().String()
	kc, ok := conn.(*kafkaConn)
	if !ok {
		kc = &kafkaConn{Conn: conn, broker: broker}
	} else {
		broker = kc.broker
	}
	var size [4]byte
	if _, err := io.ReadFull(kc, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(kc, body); err != nil {
		return nil, err
	}
	if len(body) < 4 || int32(binary.BigEndian.Uint32(body)) != corr {
		return nil, &NotKafkaError{Broker: broker}
	}
	resp := req.ResponseKind()
	if err := resp.ReadFrom(body[4:]); err != nil {
		return nil, &NotKafkaError{Broker: broker}
	}
	return resp, nil
}

// dialBroker connects to addr over TCP as the clients of this package do
// (through the host policy), for test connectivity's own probes. The
// returned connection checks every response's size like a client's.
func (a Access) dialBroker(ctx context.Context, addr string) (net.Conn, error) {
	return a.Hosts.DialContext(ctx, "tcp", addr)
}

// wrapBroker returns conn (a dialBroker connection, possibly under TLS)
// reading responses as a client's connection does: a peer whose answer is
// not Kafka fails with NotKafkaError.
func wrapBroker(conn net.Conn, addr string) net.Conn {
	return &kafkaConn{Conn: conn, broker: addr}
}
