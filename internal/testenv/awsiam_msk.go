package testenv

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MSKIAMMechanism is the SASL mechanism name of Amazon MSK's IAM access
// control.
const MSKIAMMechanism = "AWS_MSK_IAM"

// mskIAMRefreshGrace is how late after its session's end a request may
// arrive and still be served: franz-go re-authenticates at least 1 s
// before the end, and a busy test machine delays reads a little.
const mskIAMRefreshGrace = 250 * time.Millisecond

// emptyPayloadSHA256 is the hex SHA-256 of an empty body, which the
// AWS_MSK_IAM presigned GET signs.
const emptyPayloadSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// MSKIAMKafka is an in-process Kafka cluster (kfake) that authenticates
// clients the way Amazon MSK with IAM access control does: SASL mechanism
// AWS_MSK_IAM only, the client's presigned kafka-cluster:Connect request
// verified against the credentials an AWSIAM account knows.
//
// Authentication is enforced: kfake itself enforces nothing once its SASL
// requests are taken over, so every broker listener is wrapped, and a
// connection may send only ApiVersions, SASLHandshake and SASLAuthenticate
// until the handler accepted it; any other request closes the connection,
// as a real broker does. With a session lifetime (SetSessionLifetime, or
// temporary credentials, see below) a connection must also re-authenticate
// (KIP-368) before its session ends, or its next request closes it.
type MSKIAMKafka struct {
	// Cluster is the kfake cluster: pass it to KafkaClient and the other
	// helpers with the TLS and SASL options.
	Cluster *kfake.Cluster

	iam *AWSIAM

	mu       sync.Mutex
	hosts    []string
	lifetime time.Duration
	pending  map[string]mskIAMIdentity // verified, by the request-id of their answer
	auths    []MSKIAMAuthentication
	failures []MSKIAMFailure
	refusals []MSKIAMRefusal
}

// MSKIAMAuthentication is one successful AWS_MSK_IAM authentication of a
// connection.
type MSKIAMAuthentication struct {
	At          time.Time
	Client      string // the client's address
	Broker      string // the broker listener's address
	AccessKeyID string
	// Principal is the identity of the key: arn:aws:iam::<account>:user/<name>
	// or arn:aws:sts::<account>:assumed-role/<role>/<session>.
	Principal string
	RoleARN   string // the role, for temporary credentials of one
	// Reauthentication says the connection had authenticated before
	// (KIP-368).
	Reauthentication bool
	// SessionLifetime is what the broker answered (0: none): the cluster's
	// lifetime, capped at the credentials' expiry.
	SessionLifetime time.Duration
}

// MSKIAMFailure is one refused AWS_MSK_IAM authentication.
type MSKIAMFailure struct {
	At          time.Time
	AccessKeyID string // as the client claimed it; empty when unreadable
	Reason      string // e.g. "signature does not match", "unknown access key id"
}

// MSKIAMRefusal is one request the cluster refused, closing the connection.
type MSKIAMRefusal struct {
	At     time.Time
	Client string
	APIKey int16  // the refused request's key (kmsg.Metadata, kmsg.Produce…)
	Reason string // "not authenticated" or "session expired"
}

// NewMSKIAMKafka starts a kfake cluster (with NewKafka, so one broker unless
// opts say otherwise) that authenticates clients with AWS_MSK_IAM against
// the account. serverTLS is the listeners' TLS configuration
// (TLSCerts.ServerTLS(); MSK's IAM listener is SASL_SSL); nil listens in
// plain text. Do not pass kfake.TLS or kfake.ListenFn in opts: the cluster
// needs its own listener to enforce authentication.
//
// The signed host must be 127.0.0.1 or localhost (SetHosts), the credential
// scope the account's region and service kafka-cluster, x-amz-date within
// 5 minutes of now and its signature not expired (x-amz-expires).
func NewMSKIAMKafka(t testing.TB, iam *AWSIAM, serverTLS *tls.Config, opts ...kfake.Opt) *MSKIAMKafka {
	t.Helper()
	k := &MSKIAMKafka{
		iam:     iam,
		hosts:   []string{"127.0.0.1", "localhost"},
		pending: make(map[string]mskIAMIdentity),
	}
	listen := func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		if serverTLS != nil {
			ln = tls.NewListener(ln, serverTLS)
		}
		return &mskIAMListener{Listener: ln, k: k}, nil
	}
	k.Cluster = NewKafka(t, append([]kfake.Opt{kfake.ListenFn(listen)}, opts...)...)
	k.Cluster.ControlKey(int16(kmsg.SASLHandshake), k.handshake)
	k.Cluster.ControlKey(int16(kmsg.SASLAuthenticate), k.authenticate)
	return k
}

// SetSessionLifetime makes the broker answer every later successful
// authentication with session lifetime d (KIP-368; Kafka's
// connections.max.reauth.ms), so clients must re-authenticate within it.
// Temporary credentials cap it at their expiry, as Kafka caps it at a
// credential's lifetime. Zero (the default): only that cap.
func (k *MSKIAMKafka) SetSessionLifetime(d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lifetime = d
}

// SetHosts sets the host names a client may have signed for (the broker
// host it connected to, without port), overriding 127.0.0.1 and localhost.
func (k *MSKIAMKafka) SetHosts(hosts ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.hosts = slices.Clone(hosts)
}

// Authentications lists the successful authentications so far, oldest
// first.
func (k *MSKIAMKafka) Authentications() []MSKIAMAuthentication {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.auths)
}

// Failures lists the refused authentications so far, oldest first.
func (k *MSKIAMKafka) Failures() []MSKIAMFailure {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.failures)
}

// Refusals lists the requests refused so far because their connection was
// not (or no longer) authenticated, oldest first.
func (k *MSKIAMKafka) Refusals() []MSKIAMRefusal {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.refusals)
}

// AuthenticatedKeys returns the distinct access key ids that authenticated,
// in order of their first authentication.
func (k *MSKIAMKafka) AuthenticatedKeys() []string {
	var ids []string
	for _, a := range k.Authentications() {
		if !slices.Contains(ids, a.AccessKeyID) {
			ids = append(ids, a.AccessKeyID)
		}
	}
	return ids
}

// handshake answers SASLHandshake: AWS_MSK_IAM is the only mechanism.
func (k *MSKIAMKafka) handshake(kreq kmsg.Request) (kmsg.Response, error, bool) {
	k.Cluster.KeepControl()
	req := kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = []string{MSKIAMMechanism}
	if req.Mechanism != MSKIAMMechanism {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	}
	return resp, nil, true
}

// mskIAMIdentity is what a verified payload proved.
type mskIAMIdentity struct {
	accessKeyID string
	principal   string
	roleARN     string
	expires     time.Time // of temporary credentials
	lifetime    time.Duration
}

// authenticate answers SASLAuthenticate. kfake gives a control function no
// connection, so the verified identity is kept under the request-id of the
// answer; the connection's listener wrapper reads the answer on its way out
// and takes the identity (see mskIAMConn.observeResponse).
func (k *MSKIAMKafka) authenticate(kreq kmsg.Request) (kmsg.Response, error, bool) {
	k.Cluster.KeepControl()
	req := kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	requestID := awsRequestID()
	now := time.Now()

	id, err := k.verify(req.SASLAuthBytes, now)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := fmt.Sprintf("[%s]: Access denied: %v", requestID, err)
		resp.ErrorMessage = &msg
		k.failures = append(k.failures, MSKIAMFailure{At: now, AccessKeyID: id.accessKeyID, Reason: err.Error()})
		return resp, nil, true
	}

	// Kafka's SaslServerAuthenticator: the session ends at the credential's
	// expiry or after connections.max.reauth.ms, whichever comes first.
	lifetime := k.lifetime
	if !id.expires.IsZero() {
		if left := id.expires.Sub(now); lifetime == 0 || left < lifetime {
			lifetime = max(left, time.Millisecond)
		}
	}
	id.lifetime = lifetime
	resp.SessionLifetimeMillis = lifetime.Milliseconds()
	// MSK answers a non-empty JSON object; franz-go fails on an empty one.
	resp.SASLAuthBytes, _ = json.Marshal(map[string]string{"version": "2020_10_22", "request-id": requestID})
	k.pending[requestID] = id
	return resp, nil, true
}

// verify checks an AWS_MSK_IAM payload: a JSON object of strings describing
// a SigV4-presigned "GET /?Action=kafka-cluster:Connect" to the broker
// host. It recomputes the signature with aws-sdk-go-v2's signer. The
// returned identity carries the claimed access key id even on error.
func (k *MSKIAMKafka) verify(payload []byte, now time.Time) (mskIAMIdentity, error) {
	var id mskIAMIdentity
	var f map[string]string
	if err := json.Unmarshal(payload, &f); err != nil {
		return id, fmt.Errorf("malformed payload: %v", err)
	}
	scope := strings.Split(f["x-amz-credential"], "/")
	if len(scope) != 5 {
		return id, fmt.Errorf("malformed x-amz-credential %q", f["x-amz-credential"])
	}
	id.accessKeyID = scope[0]
	date, region, service := scope[1], scope[2], scope[3]

	switch {
	case f["version"] != "2020_10_22":
		return id, fmt.Errorf("unsupported version %q", f["version"])
	case f["action"] != "kafka-cluster:Connect":
		return id, fmt.Errorf("action %q is not kafka-cluster:Connect", f["action"])
	case f["x-amz-algorithm"] != "AWS4-HMAC-SHA256":
		return id, fmt.Errorf("unsupported x-amz-algorithm %q", f["x-amz-algorithm"])
	case f["x-amz-signedheaders"] != "host":
		return id, fmt.Errorf("x-amz-signedheaders %q is not host", f["x-amz-signedheaders"])
	case service != "kafka-cluster" || scope[4] != "aws4_request":
		return id, fmt.Errorf("credential scope is for service %q, not kafka-cluster", service)
	case region != k.iam.Region:
		return id, fmt.Errorf("credential scope region %q: the cluster is in %q", region, k.iam.Region)
	}
	k.mu.Lock()
	hostOK := slices.Contains(k.hosts, f["host"])
	k.mu.Unlock()
	if !hostOK {
		return id, fmt.Errorf("signed for host %q, not this broker", f["host"])
	}

	signedAt, err := time.Parse("20060102T150405Z", f["x-amz-date"])
	if err != nil || date != f["x-amz-date"][:8] {
		return id, fmt.Errorf("malformed x-amz-date %q for credential date %q", f["x-amz-date"], date)
	}
	expires, err := strconv.Atoi(f["x-amz-expires"])
	if err != nil || expires <= 0 || expires > 900 {
		return id, fmt.Errorf("x-amz-expires %q is not 1 to 900 seconds", f["x-amz-expires"])
	}
	if d := now.Sub(signedAt); d > 5*time.Minute || d < -5*time.Minute {
		return id, fmt.Errorf("x-amz-date %s is more than 5 minutes from the broker's clock", f["x-amz-date"])
	}
	if now.After(signedAt.Add(time.Duration(expires) * time.Second)) {
		return id, errors.New("signature expired")
	}

	cred, ok := k.iam.credential(id.accessKeyID)
	if !ok {
		return id, errors.New("unknown access key id")
	}
	token := f["x-amz-security-token"]
	switch {
	case cred.token == "" && token != "":
		return id, errors.New("security token sent with a long-term access key")
	case cred.token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(cred.token)) != 1:
		return id, errors.New("invalid security token")
	case cred.token != "" && !now.Before(cred.expires):
		return id, errors.New("security token expired")
	}

	query := url.Values{"Action": {f["action"]}, "X-Amz-Expires": {f["x-amz-expires"]}}
	req, err := http.NewRequest(http.MethodGet, (&url.URL{Scheme: "https", Host: f["host"], Path: "/", RawQuery: query.Encode()}).String(), nil)
	if err != nil {
		return id, fmt.Errorf("malformed host %q: %v", f["host"], err)
	}
	signedURI, _, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: id.accessKeyID, SecretAccessKey: cred.secret, SessionToken: token},
		req, emptyPayloadSHA256, service, region, signedAt)
	if err != nil {
		return id, fmt.Errorf("recompute signature: %v", err)
	}
	signed, err := url.Parse(signedURI)
	if err != nil {
		return id, fmt.Errorf("recompute signature: %v", err)
	}
	want := signed.Query().Get("X-Amz-Signature")
	if subtle.ConstantTimeCompare([]byte(want), []byte(f["x-amz-signature"])) != 1 {
		return id, errors.New("signature does not match")
	}
	id.principal, id.roleARN, id.expires = cred.principal, cred.roleARN, cred.expires
	return id, nil
}

// takeVerified hands the listener wrapper the identity answered under
// requestID.
func (k *MSKIAMKafka) takeVerified(requestID string) (mskIAMIdentity, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id, ok := k.pending[requestID]
	delete(k.pending, requestID)
	return id, ok
}

func (k *MSKIAMKafka) recordAuth(a MSKIAMAuthentication) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.auths = append(k.auths, a)
}

func (k *MSKIAMKafka) recordRefusal(r MSKIAMRefusal) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refusals = append(k.refusals, r)
}

// mskIAMListener wraps a broker listener so that each connection is gated
// on its authentication.
type mskIAMListener struct {
	net.Listener
	k *MSKIAMKafka
}

func (l *mskIAMListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &mskIAMConn{Conn: c, k: l.k, broker: l.Addr().String(), saslReqs: make(map[int32]int16)}, nil
}

// mskIAMConn sits between a client connection (after TLS) and kfake. It
// reads whole request frames and lets one through only when the connection
// may send it; it watches the SASLAuthenticate answers kfake writes back to
// learn when the connection authenticated and for how long.
type mskIAMConn struct {
	net.Conn
	k      *MSKIAMKafka
	broker string

	rmu      sync.Mutex // kfake reads from one goroutine; be safe anyway
	rpending []byte     // the admitted frame's bytes not yet read by kfake

	wmu      sync.Mutex
	whdr     []byte // partial size + correlation id of the next response
	wskip    int    // bytes of a response we do not look at
	wwant    int    // length of a SASLAuthenticate response body being collected
	wcollect []byte
	wversion int16

	mu            sync.Mutex
	saslReqs      map[int32]int16 // SASLAuthenticate versions by correlation id
	authenticated bool
	authCount     int
	sessionEnd    time.Time // zero: no session lifetime
}

func (c *mskIAMConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.rpending) == 0 {
		frame, err := c.readFrame()
		if err != nil {
			return 0, err
		}
		c.rpending = frame
	}
	n := copy(p, c.rpending)
	c.rpending = c.rpending[n:]
	return n, nil
}

// readFrame reads one request (size, then key, version, correlation id and
// the rest) and admits it or closes the connection.
func (c *mskIAMConn) readFrame() ([]byte, error) {
	frame, err := readKafkaRequest(c.Conn, 256<<20)
	if err != nil {
		c.Conn.Close()
		return nil, err
	}
	key := int16(binary.BigEndian.Uint16(frame[4:6]))
	version := int16(binary.BigEndian.Uint16(frame[6:8]))
	corr := int32(binary.BigEndian.Uint32(frame[8:12]))
	if err := c.admit(key, version, corr); err != nil {
		c.Conn.Close()
		return nil, err
	}
	return frame, nil
}

// admit lets ApiVersions and the SASL requests through always, anything
// else only on an authenticated connection whose session has not ended.
// Kafka closes the connection in both cases
// (SaslServerAuthenticator: "Unexpected Kafka request of type … during
// SASL handshake"; KIP-368 for an expired session).
func (c *mskIAMConn) admit(key, version int16, corr int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch kmsg.Key(key) {
	case kmsg.ApiVersions, kmsg.SASLHandshake:
		return nil
	case kmsg.SASLAuthenticate:
		c.saslReqs[corr] = version
		return nil
	}
	var reason string
	switch {
	case !c.authenticated:
		reason = "not authenticated"
	case !c.sessionEnd.IsZero() && time.Now().After(c.sessionEnd.Add(mskIAMRefreshGrace)):
		reason = "session expired"
	default:
		return nil
	}
	c.k.recordRefusal(MSKIAMRefusal{At: time.Now(), Client: c.RemoteAddr().String(), APIKey: key, Reason: reason})
	return fmt.Errorf("testenv: MSK IAM broker refused request key %d from %s: %s", key, c.RemoteAddr(), reason)
}

func (c *mskIAMConn) Write(p []byte) (int, error) {
	// Learn the outcome before the client can see it and send its next
	// request.
	c.observeResponses(p)
	return c.Conn.Write(p)
}

// observeResponses follows the response frames written to the client and
// hands each SASLAuthenticate response to observeResponse.
func (c *mskIAMConn) observeResponses(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for len(b) > 0 {
		switch {
		case c.wskip > 0:
			n := min(c.wskip, len(b))
			c.wskip -= n
			b = b[n:]
		case c.wcollect != nil:
			n := min(c.wwant-len(c.wcollect), len(b))
			c.wcollect = append(c.wcollect, b[:n]...)
			b = b[n:]
			if len(c.wcollect) == c.wwant {
				c.observeResponse(c.wversion, c.wcollect)
				c.wcollect = nil
			}
		default:
			n := min(8-len(c.whdr), len(b))
			c.whdr = append(c.whdr, b[:n]...)
			b = b[n:]
			if len(c.whdr) < 8 {
				return
			}
			body := int(binary.BigEndian.Uint32(c.whdr[:4])) - 4
			corr := int32(binary.BigEndian.Uint32(c.whdr[4:8]))
			c.whdr = c.whdr[:0]
			c.mu.Lock()
			version, ok := c.saslReqs[corr]
			delete(c.saslReqs, corr)
			c.mu.Unlock()
			if !ok {
				c.wskip = body
				continue
			}
			c.wversion, c.wwant, c.wcollect = version, body, make([]byte, 0, body)
			if body == 0 {
				c.observeResponse(version, nil)
				c.wcollect = nil
			}
		}
	}
}

// observeResponse updates the connection's state from a SASLAuthenticate
// response body (after the correlation id).
func (c *mskIAMConn) observeResponse(version int16, body []byte) {
	if version >= 2 { // flexible: the response header has tagged fields
		r := kbin.Reader{Src: body}
		kmsg.SkipTags(&r)
		body = r.Src
	}
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.SetVersion(version)
	ok := resp.ReadFrom(body) == nil && resp.ErrorCode == 0
	var id mskIAMIdentity
	if ok {
		var answer struct {
			RequestID string `json:"request-id"`
		}
		ok = json.Unmarshal(resp.SASLAuthBytes, &answer) == nil
		if ok {
			id, ok = c.k.takeVerified(answer.RequestID)
		}
	}

	now := time.Now()
	c.mu.Lock()
	c.authenticated = ok
	c.sessionEnd = time.Time{}
	if ok && id.lifetime > 0 {
		c.sessionEnd = now.Add(id.lifetime)
	}
	reauth := c.authCount > 0
	if ok {
		c.authCount++
	}
	c.mu.Unlock()
	if ok {
		c.k.recordAuth(MSKIAMAuthentication{
			At:               now,
			Client:           c.RemoteAddr().String(),
			Broker:           c.broker,
			AccessKeyID:      id.accessKeyID,
			Principal:        id.principal,
			RoleARN:          id.roleARN,
			Reauthentication: reauth,
			SessionLifetime:  id.lifetime,
		})
	}
}
