package testenv

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// AWSIAM stands in for the identity side of one AWS account: IAM users with
// long-term access keys, roles that can be assumed, and the temporary
// credentials issued for those roles. The STS and instance-metadata
// stand-ins (NewAWSSTS, NewAWSIMDS) issue credentials from it, and an MSK
// cluster with IAM access control (NewMSKIAMKafka) accepts what it knows, so
// a test drives the real aws-sdk-go-v2 credential providers end to end.
//
// It is safe for concurrent use.
type AWSIAM struct {
	// Region is where the account's MSK cluster and STS endpoint are:
	// "eu-west-1". Signatures must be scoped to it. Read-only.
	Region string
	// AccountID is the account's 12-digit id, "123456789012". Read-only.
	AccountID string

	mu       sync.Mutex
	keys     map[string]awsCredential // by access key id
	roles    map[string]awsRole       // by role ARN
	lifetime time.Duration
	issued   []AWSIssuedCredentials
}

// AWSIssuedCredentials describes temporary credentials the account issued
// for a role, for assertions (never the secret).
type AWSIssuedCredentials struct {
	AccessKeyID string    // "ASIA…"
	RoleARN     string    // the role assumed
	SessionName string    // the role session name
	Principal   string    // arn:aws:sts::<account>:assumed-role/<role>/<session>
	Expiration  time.Time // when they stop being accepted
	Issuer      string    // "sts" (AssumeRole), "imds" (instance profile) or "test" (AWSIAM.AssumeRole)
}

// awsCredential is what the account knows about an access key id.
type awsCredential struct {
	secret    string
	token     string    // session token; empty for a long-term key
	expires   time.Time // zero for a long-term key
	principal string    // user ARN or assumed-role ARN
	roleARN   string    // for temporary credentials of a role
	userID    string    // what GetCallerIdentity calls UserId
}

type awsRole struct {
	name       string
	id         string // "AROA…"
	externalID string // required on AssumeRole when not empty
}

// NewAWSIAM returns an empty account in region eu-west-1 with id
// 123456789012. Temporary credentials last as long as asked for (STS
// DurationSeconds, default 1 h) or 6 h (instance profile) unless
// SetCredentialLifetime says otherwise.
func NewAWSIAM(t testing.TB) *AWSIAM {
	t.Helper()
	return &AWSIAM{
		Region:    "eu-west-1",
		AccountID: "123456789012",
		keys:      make(map[string]awsCredential),
		roles:     make(map[string]awsRole),
	}
}

// AddUser creates IAM user name with a new long-term access key ("AKIA…")
// and returns the key. Its principal is arn:aws:iam::<account>:user/<name>.
func (a *AWSIAM) AddUser(name string) aws.Credentials {
	id, secret := awsRandomID("AKIA"), awsRandomSecret()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys[id] = awsCredential{
		secret:    secret,
		principal: fmt.Sprintf("arn:aws:iam::%s:user/%s", a.AccountID, name),
		userID:    awsRandomID("AIDA"),
	}
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "testenv"}
}

// AddRole creates role name and returns its ARN
// (arn:aws:iam::<account>:role/<name>). Any principal of the account may
// assume it; when externalID is not empty, AssumeRole must pass it (the
// sts:ExternalId condition of a trust policy for a third party).
func (a *AWSIAM) AddRole(name, externalID string) string {
	arn := fmt.Sprintf("arn:aws:iam::%s:role/%s", a.AccountID, name)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roles[arn] = awsRole{name: name, id: awsRandomID("AROA"), externalID: externalID}
	return arn
}

// SetCredentialLifetime makes every temporary credential issued from now
// on (STS AssumeRole, the instance profile, AssumeRole) valid for d,
// whatever was asked for: real STS issues at least 15 minutes, a test of
// refresh wants seconds. Zero restores the default.
func (a *AWSIAM) SetCredentialLifetime(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lifetime = d
}

// AssumeRole issues temporary credentials for the role directly, as STS
// would, valid for lifetime (or SetCredentialLifetime's value when set).
// It fails the test for an unknown role. Use it to hand a test session
// credentials without an STS round trip, or expired ones.
func (a *AWSIAM) AssumeRole(t testing.TB, roleARN, sessionName string, lifetime time.Duration) aws.Credentials {
	t.Helper()
	creds, ok := a.issue(roleARN, sessionName, lifetime, "test")
	if !ok {
		t.Fatalf("testenv: AssumeRole: no role %s", roleARN)
	}
	return creds
}

// IssuedCredentials lists the temporary credentials issued so far, oldest
// first.
func (a *AWSIAM) IssuedCredentials() []AWSIssuedCredentials {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AWSIssuedCredentials(nil), a.issued...)
}

// issue creates temporary credentials ("ASIA…" with a session token) for a
// known role; ok is false for an unknown one.
func (a *AWSIAM) issue(roleARN, sessionName string, lifetime time.Duration, issuer string) (aws.Credentials, bool) {
	id, secret, token := awsRandomID("ASIA"), awsRandomSecret(), awsRandomToken()
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	role, ok := a.roles[roleARN]
	if !ok {
		return aws.Credentials{}, false
	}
	if a.lifetime > 0 {
		lifetime = a.lifetime
	}
	// STS answers whole seconds; keep the expiry the client parses and the
	// one we enforce the same.
	expires := now.Add(lifetime).Truncate(time.Second)
	if !expires.After(now) {
		expires = expires.Add(time.Second)
	}
	principal := fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", a.AccountID, role.name, sessionName)
	a.keys[id] = awsCredential{
		secret:    secret,
		token:     token,
		expires:   expires,
		principal: principal,
		roleARN:   roleARN,
		userID:    role.id + ":" + sessionName,
	}
	a.issued = append(a.issued, AWSIssuedCredentials{
		AccessKeyID: id,
		RoleARN:     roleARN,
		SessionName: sessionName,
		Principal:   principal,
		Expiration:  expires,
		Issuer:      issuer,
	})
	return aws.Credentials{
		AccessKeyID:     id,
		SecretAccessKey: secret,
		SessionToken:    token,
		CanExpire:       true,
		Expires:         expires,
		Source:          "testenv",
	}, true
}

// credential looks up an access key id.
func (a *AWSIAM) credential(accessKeyID string) (awsCredential, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.keys[accessKeyID]
	return c, ok
}

func (a *AWSIAM) role(arn string) (awsRole, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.roles[arn]
	return r, ok
}

// IsolateAWSEnv makes the AWS SDK's default configuration, and franz-go's
// AWS_MSK_IAM mechanism, see only what the test sets: it unsets every AWS_*
// variable, points the shared config and credentials files at files that do
// not exist, switches the instance-metadata client off (so nothing ever
// reaches 169.254.169.254) and sets AWS_REGION to region (franz-go signs for
// the region of the broker's host name, and for 127.0.0.1 falls back to
// AWS_REGION). Everything is restored when the test ends.
//
// It uses t.Setenv, so the test and its parents must not be parallel.
func IsolateAWSEnv(t testing.TB, region string) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") {
			t.Setenv(name, "") // registers the restore
			os.Unsetenv(name)
		}
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", region)
}

var awsIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// awsRandomID returns prefix and 16 upper-case base32 characters, the shape
// of AWS access key ids and unique ids.
func awsRandomID(prefix string) string {
	return prefix + awsIDEncoding.EncodeToString(awsRandomBytes(10))
}

// awsRandomSecret returns 40 characters of standard base64, like a real
// secret access key (with '+' and '/').
func awsRandomSecret() string {
	return base64.StdEncoding.EncodeToString(awsRandomBytes(30))
}

// awsRandomToken returns a session token in standard base64 with padding,
// so '+', '/' and '=' all need escaping in a signed query, as real ones do.
func awsRandomToken() string {
	return "FwoGZXIvYXdzE" + base64.StdEncoding.EncodeToString(awsRandomBytes(118))
}

// awsRequestID returns a UUID-shaped request id.
func awsRequestID() string {
	b := awsRandomBytes(16)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func awsRandomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("testenv: random bytes: %v", err))
	}
	return b
}
