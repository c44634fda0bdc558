package testenv

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// GSSAPIBroker is the broker side of SASL GSSAPI (Kerberos) for a kfake
// cluster, which has none: it verifies a client's service ticket with the
// service's keytab, as a Kafka broker with sasl.enabled.mechanisms=GSSAPI
// does, and refuses every connection that did not authenticate.
//
// It works below kfake, on each connection the cluster accepts (a
// kfake.ListenFn, see KafkaOpts): it answers SASLHandshake and
// SASLAuthenticate itself, passes ApiVersions on, and passes any other
// request only once that connection authenticated, closing it otherwise,
// as Kafka does. Working per connection is what lets it enforce
// authentication, keep the principal of each connection across
// re-authentication, and close a connection whose session expired; a
// kfake.ControlKey handler sees requests without their connection.
//
// The exchange is RFC 4752's, as franz-go's kerberos mechanism and the Java
// client speak it: an AP-REQ (no mutual authentication), answered by a wrap
// token offering no security layer, then the client's wrap token choosing
// it, answered by nothing.
type GSSAPIBroker struct {
	keytab       *keytab.Keytab
	service      string // service principal without realm, as kafka/127.0.0.1
	serviceRealm string // "" accepts tickets of any realm the keytab has keys for
	tls          *tls.Config
	lifetime     time.Duration
	skew         time.Duration

	mu       sync.Mutex
	logins   []GSSAPILogin
	refusals []string
}

// GSSAPILogin is one successful authentication on a connection.
type GSSAPILogin struct {
	Principal string    // the client, as alice@TEST.LOCAL
	Client    string    // the connection's remote address
	Reauth    bool      // a re-authentication of an authenticated connection (KIP-368)
	TicketEnd time.Time // when the service ticket the client presented expires
	At        time.Time
}

// GSSAPIOption changes what NewGSSAPIBroker builds.
type GSSAPIOption func(*GSSAPIBroker)

// GSSAPITLS makes the brokers speak TLS with cfg (as TLSCerts.ServerTLS
// gives), for SASL_SSL. Use it instead of kfake.TLS, which would wrap the
// GSSAPI listener and hide the plaintext requests from it.
func GSSAPITLS(cfg *tls.Config) GSSAPIOption {
	return func(b *GSSAPIBroker) { b.tls = cfg }
}

// GSSAPISessionLifetime makes each authentication valid for d, as Kafka's
// connections.max.reauth.ms does: the SASLAuthenticate response says so
// (KIP-368), a client re-authenticates before d passes, and a connection
// that sends anything but a new handshake after d is closed. The default,
// zero, lets sessions last as long as their connection, and refuses
// re-authentication.
func GSSAPISessionLifetime(d time.Duration) GSSAPIOption {
	return func(b *GSSAPIBroker) { b.lifetime = d }
}

// GSSAPIMaxClockSkew sets how far past its end a service ticket is still
// accepted (and how far an authenticator's time may be off), overriding
// Kerberos's usual 5 minutes. A test of ticket expiry sets a few seconds,
// so an expired ticket is refused when it expires.
func GSSAPIMaxClockSkew(d time.Duration) GSSAPIOption {
	return func(b *GSSAPIBroker) { b.skew = d }
}

// gssapiMaxFrame bounds the size of a request the GSSAPI listener reads
// into memory, as a broker's socket.request.max.bytes does.
const gssapiMaxFrame = 100 << 20

// NewGSSAPIBroker returns the GSSAPI side of brokers whose service
// principal is servicePrincipal (as kafka/127.0.0.1@TEST.LOCAL; without a
// realm any realm of the keytab is accepted) with its key in keytabFile (as
// KDC.AddService returns). Start the cluster with its KafkaOpts:
//
//	gs := testenv.NewGSSAPIBroker(t, kdc.AddService("kafka/127.0.0.1"), "kafka/127.0.0.1@"+kdc.Realm())
//	c := testenv.NewKafka(t, gs.KafkaOpts()...)
//
// When the test failed, its logins and refusals are logged.
func NewGSSAPIBroker(t testing.TB, keytabFile, servicePrincipal string, opts ...GSSAPIOption) *GSSAPIBroker {
	t.Helper()
	kt, err := keytab.Load(keytabFile)
	if err != nil {
		t.Fatalf("testenv: load keytab %s: %v", keytabFile, err)
	}
	svc, realm, _ := strings.Cut(servicePrincipal, "@")
	b := &GSSAPIBroker{keytab: kt, service: svc, serviceRealm: realm, skew: 5 * time.Minute}
	for _, opt := range opts {
		opt(b)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		var lines []string
		for _, l := range b.logins {
			lines = append(lines, fmt.Sprintf("login %s from %s (reauth %v, ticket ends %s)", l.Principal, l.Client, l.Reauth, l.TicketEnd.Format(time.TimeOnly)))
		}
		for _, r := range b.refusals {
			lines = append(lines, "refused: "+r)
		}
		t.Logf("GSSAPI broker (%s):\n%s", servicePrincipal, strings.Join(lines, "\n"))
	})
	return b
}

// KafkaOpts returns the kfake options that put the brokers behind this
// GSSAPI side (and TLS, with GSSAPITLS). Other options may follow, but no
// kfake.TLS, kfake.ListenFn or kfake.EnableSASL.
func (b *GSSAPIBroker) KafkaOpts() []kfake.Opt {
	return []kfake.Opt{kfake.ListenFn(func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		if b.tls != nil {
			ln = tls.NewListener(ln, b.tls)
		}
		return &gssapiListener{Listener: ln, b: b}, nil
	})}
}

// Logins returns the successful authentications so far, in order.
func (b *GSSAPIBroker) Logins() []GSSAPILogin {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]GSSAPILogin(nil), b.logins...)
}

// Principals returns each principal that authenticated, in the order they
// first did.
func (b *GSSAPIBroker) Principals() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ps []string
	seen := map[string]bool{}
	for _, l := range b.logins {
		if !seen[l.Principal] {
			seen[l.Principal] = true
			ps = append(ps, l.Principal)
		}
	}
	return ps
}

// Refusals returns why connections were refused so far, in order: a failed
// authentication (with the Kerberos error), or a request sent without one.
func (b *GSSAPIBroker) Refusals() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.refusals...)
}

func (b *GSSAPIBroker) addLogin(l GSSAPILogin) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logins = append(b.logins, l)
}

func (b *GSSAPIBroker) refuse(client, why string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refusals = append(b.refusals, client+": "+why)
}

type gssapiListener struct {
	net.Listener
	b *GSSAPIBroker
}

func (l *gssapiListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gssapiConn{Conn: conn, b: l.b, client: conn.RemoteAddr().String()}, nil
}

// gssapiStage is where a connection is in the SASL exchange.
type gssapiStage int

const (
	gssapiBegin     gssapiStage = iota // no handshake yet
	gssapiHandshake                    // GSSAPI handshake answered: the AP-REQ comes next
	gssapiWrap                         // AP-REQ accepted: the client's wrap token comes next
	gssapiDone                         // authenticated
)

// errGSSAPIRefused closes a connection: kfake stops reading it.
var errGSSAPIRefused = errors.New("testenv: connection refused by the GSSAPI broker")

// gssapiConn is one client connection as kfake sees it. kfake calls Read
// from one goroutine at a time and Write from another; the exchange state
// is only touched by Read.
type gssapiConn struct {
	net.Conn
	b      *GSSAPIBroker
	client string

	wmu sync.Mutex // one frame at a time: kfake's responses and ours

	pending []byte // a request frame passed on to kfake, not yet read by it

	stage     gssapiStage
	principal string    // the authenticated principal; kept through re-authentication
	expiry    time.Time // when the session ends; zero: with the connection

	// The exchange in progress.
	candidate string
	key       types.EncryptionKey
	ticketEnd time.Time
}

func (c *gssapiConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.Write(p)
}

func (c *gssapiConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		frame, err := c.readFrame()
		if err != nil {
			return 0, err
		}
		pass, err := c.handle(frame[4:])
		if err != nil {
			return 0, err
		}
		if pass {
			c.pending = frame
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// readFrame reads one request, with its size prefix.
func (c *gssapiConn) readFrame() ([]byte, error) {
	frame, err := readKafkaRequest(c.Conn, gssapiMaxFrame)
	if errors.Is(err, errBadFrame) {
		c.b.refuse(c.client, err.Error())
		return nil, errGSSAPIRefused
	}
	return frame, err
}

// handle answers a SASL request itself and says whether kfake gets any
// other; an error closes the connection.
func (c *gssapiConn) handle(body []byte) (pass bool, err error) {
	r := kbin.Reader{Src: body}
	key, version, corr := r.Int16(), r.Int16(), r.Int32()
	r.NullableString() // client ID
	switch key {
	case int16(kmsg.ApiVersions):
		return true, nil
	case int16(kmsg.SASLHandshake), int16(kmsg.SASLAuthenticate):
	default:
		if c.stage != gssapiDone {
			c.b.refuse(c.client, fmt.Sprintf("%s request before SASL authentication", kmsg.NameForKey(key)))
			return false, errGSSAPIRefused
		}
		if !c.expiry.IsZero() && time.Now().After(c.expiry) {
			c.b.refuse(c.client, fmt.Sprintf("%s request after the session of %s expired at %s", kmsg.NameForKey(key), c.principal, c.expiry.Format(time.TimeOnly)))
			return false, errGSSAPIRefused
		}
		return true, nil
	}

	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	if err := r.Complete(); err != nil {
		return false, fmt.Errorf("testenv: GSSAPI broker: %s request header: %w", kmsg.NameForKey(key), err)
	}
	if err := req.ReadFrom(r.Src); err != nil {
		c.b.refuse(c.client, fmt.Sprintf("unreadable %s v%d request: %v", kmsg.NameForKey(key), version, err))
		return false, errGSSAPIRefused
	}
	switch req := req.(type) {
	case *kmsg.SASLHandshakeRequest:
		return false, c.handshake(corr, req)
	case *kmsg.SASLAuthenticateRequest:
		return false, c.authenticate(corr, req)
	}
	return false, nil // unreachable
}

func (c *gssapiConn) handshake(corr int32, req *kmsg.SASLHandshakeRequest) error {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = []string{"GSSAPI"}
	var why string
	switch {
	case req.Version < 1:
		// v0 would be followed by unframed tokens; kfake and current
		// clients use v1.
		why = "SASLHandshake v0 (unframed SASL) is not supported"
		resp.ErrorCode = kerr.UnsupportedVersion.Code
	case c.stage == gssapiDone && c.expiry.IsZero():
		why = "re-authentication while sessions do not expire"
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case c.stage == gssapiHandshake || c.stage == gssapiWrap:
		why = "SASLHandshake in the middle of an authentication"
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case req.Mechanism != "GSSAPI":
		why = fmt.Sprintf("mechanism %q instead of GSSAPI", req.Mechanism)
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	}
	if why != "" {
		c.b.refuse(c.client, why)
		if err := c.reply(corr, resp); err != nil {
			return err
		}
		return errGSSAPIRefused
	}
	c.stage = gssapiHandshake
	return c.reply(corr, resp)
}

func (c *gssapiConn) authenticate(corr int32, req *kmsg.SASLAuthenticateRequest) error {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	switch c.stage {
	case gssapiHandshake:
		principal, key, end, err := c.b.acceptAPReq(req.SASLAuthBytes, c.Conn.RemoteAddr())
		if err == nil && c.principal != "" && principal != c.principal {
			err = fmt.Errorf("re-authentication as %s of a connection authenticated as %s", principal, c.principal)
		}
		var token []byte
		if err == nil {
			token, err = acceptorWrapToken(key)
		}
		if err != nil {
			return c.fail(corr, resp, err)
		}
		c.candidate, c.key, c.ticketEnd = principal, key, end
		c.stage = gssapiWrap
		resp.SASLAuthBytes = token
		return c.reply(corr, resp)

	case gssapiWrap:
		if err := verifyInitiatorWrapToken(req.SASLAuthBytes, c.key, c.candidate); err != nil {
			return c.fail(corr, resp, err)
		}
		reauth := c.principal != ""
		now := time.Now()
		c.principal, c.stage = c.candidate, gssapiDone
		c.expiry = time.Time{}
		if c.b.lifetime > 0 {
			c.expiry = now.Add(c.b.lifetime)
			resp.SessionLifetimeMillis = c.b.lifetime.Milliseconds()
		}
		c.b.addLogin(GSSAPILogin{Principal: c.principal, Client: c.client, Reauth: reauth, TicketEnd: c.ticketEnd, At: now})
		return c.reply(corr, resp)

	default:
		c.b.refuse(c.client, "SASLAuthenticate without a GSSAPI handshake")
		resp.ErrorCode = kerr.IllegalSaslState.Code
		if err := c.reply(corr, resp); err != nil {
			return err
		}
		return errGSSAPIRefused
	}
}

// fail answers a failed authentication as Kafka does (the error, then the
// connection closes).
func (c *gssapiConn) fail(corr int32, resp *kmsg.SASLAuthenticateResponse, cause error) error {
	c.b.refuse(c.client, "GSSAPI authentication failed: "+cause.Error())
	resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
	msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism GSSAPI: " + cause.Error()
	resp.ErrorMessage = &msg
	resp.SASLAuthBytes = nil
	if err := c.reply(corr, resp); err != nil {
		return err
	}
	return errGSSAPIRefused
}

// reply writes a response frame, as kfake frames its own.
func (c *gssapiConn) reply(corr int32, resp kmsg.Response) error {
	buf := make([]byte, 8, 64)
	if resp.IsFlexible() {
		buf = append(buf, 0) // empty tagged fields of the response header
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf[:4], uint32(len(buf)-4))
	binary.BigEndian.PutUint32(buf[4:8], uint32(corr))
	_, err := c.Write(buf)
	return err
}

// acceptAPReq verifies a client's initial GSS-API token (RFC 2743 framing,
// KRB5 mechanism, AP-REQ) and returns the client principal, the key of the
// security context and when the service ticket ends.
func (b *GSSAPIBroker) acceptAPReq(token []byte, remote net.Addr) (string, types.EncryptionKey, time.Time, error) {
	var none types.EncryptionKey
	var tok spnego.KRB5Token
	if err := tok.Unmarshal(token); err != nil {
		return "", none, time.Time{}, fmt.Errorf("not a Kerberos GSS-API token: %w", err)
	}
	if !tok.IsAPReq() {
		return "", none, time.Time{}, errors.New("the Kerberos GSS-API token holds no AP-REQ")
	}
	apReq := tok.APReq
	sname, realm := apReq.Ticket.SName.PrincipalNameString(), apReq.Ticket.Realm
	if sname != b.service || (b.serviceRealm != "" && realm != b.serviceRealm) {
		want := b.service
		if b.serviceRealm != "" {
			want += "@" + b.serviceRealm
		}
		return "", none, time.Time{}, fmt.Errorf("ticket is for %s@%s, this broker is %s", sname, realm, want)
	}
	opts := []func(*service.Settings){service.DecodePAC(false), service.MaxClockSkew(b.skew)}
	if tcp, ok := remote.(*net.TCPAddr); ok {
		opts = append(opts, service.ClientAddress(types.HostAddressFromNetIP(tcp.IP)))
	}
	ok, _, err := service.VerifyAPREQ(&apReq, service.NewSettings(b.keytab, opts...))
	if err == nil && !ok {
		err = errors.New("AP-REQ not valid")
	}
	if err != nil {
		return "", none, time.Time{}, err
	}
	if types.IsFlagSet(&apReq.APOptions, flags.APOptionMutualRequired) {
		return "", none, time.Time{}, errors.New("client asks for mutual authentication, which this test broker does not answer")
	}
	enc := apReq.Ticket.DecryptedEncPart
	principal := enc.CName.PrincipalNameString() + "@" + enc.CRealm
	key := enc.Key
	// RFC 4121 4.2.2: without an acceptor subkey, the initiator's subkey,
	// if it sent one, protects the context's tokens.
	if apReq.Authenticator.SubKey.KeyType != 0 {
		key = apReq.Authenticator.SubKey
	}
	return principal, key, enc.EndTime, nil
}

// gssapiNoSecurityLayer is the only security layer offered: none, with no
// maximum message size (RFC 4752 3.3).
var gssapiNoSecurityLayer = []byte{0x01, 0, 0, 0}

// acceptorWrapToken is the broker's answer to an accepted AP-REQ: an RFC
// 4121 wrap token, integrity only, offering gssapiNoSecurityLayer.
func acceptorWrapToken(key types.EncryptionKey) ([]byte, error) {
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, err
	}
	wt := gssapi.WrapToken{
		Flags:   0x01, // sent by the acceptor
		EC:      uint16(et.GetHMACBitLength() / 8),
		Payload: gssapiNoSecurityLayer,
	}
	if err := wt.SetCheckSum(key, keyusage.GSSAPI_ACCEPTOR_SEAL); err != nil {
		return nil, err
	}
	return wt.Marshal()
}

// verifyInitiatorWrapToken checks the client's answer: a wrap token under
// the context's key that chooses no security layer and, if it names an
// authorization identity, names principal.
func verifyInitiatorWrapToken(token []byte, key types.EncryptionKey, principal string) error {
	var wt gssapi.WrapToken
	if err := wt.Unmarshal(token, false); err != nil {
		return fmt.Errorf("client's wrap token: %w", err)
	}
	if ok, err := wt.Verify(key, keyusage.GSSAPI_INITIATOR_SEAL); !ok {
		return fmt.Errorf("client's wrap token does not verify: %w", err)
	}
	if len(wt.Payload) < 4 || wt.Payload[0] != 0x01 {
		return fmt.Errorf("client chose security layer %x, only none (01) was offered", wt.Payload)
	}
	if authz := string(wt.Payload[4:]); authz != "" && authz != principal {
		return fmt.Errorf("client %s asks to act as %s", principal, authz)
	}
	return nil
}
