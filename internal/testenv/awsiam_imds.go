package testenv

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// AWSIMDS is a stand-in for the EC2 instance metadata service (IMDSv2
// only) of an instance whose instance profile has one role of an AWSIAM
// account: it hands out that role's temporary credentials, as the SDK's
// default credential chain fetches them on EC2.
//
// Point the SDK at it with Setenv (AWS_EC2_METADATA_SERVICE_ENDPOINT) or
// config.WithEC2IMDSEndpoint(m.URL).
type AWSIMDS struct {
	// URL is the endpoint, http://127.0.0.1:<port>.
	URL string
	// RoleARN is the instance profile's role.
	RoleARN string
	// InstanceID names the instance ("i-…"); it is the session name of the
	// role's credentials.
	InstanceID string

	iam      *AWSIAM
	roleName string

	mu          sync.Mutex
	tokens      map[string]time.Time // IMDSv2 session tokens and their expiry
	current     aws.Credentials
	currentLife time.Duration // the full lifetime of current
	credFetches int
	refused     int
}

// NewAWSIMDS starts the instance-metadata stand-in for an instance whose
// role is roleARN (from AWSIAM.AddRole); it stops when the test ends.
//
// It serves PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds
// 1–21600) and, with a valid X-aws-ec2-metadata-token only (a request
// without one gets 401: IMDSv1 is off), /latest/meta-data/iam/info,
// /latest/meta-data/iam/security-credentials/ (the role name) and
// /latest/meta-data/iam/security-credentials/<role> (credentials JSON with
// Expiration). Like EC2 it serves the same credentials until they are close
// to expiry (5 minutes, or a third of their lifetime when shorter), then
// new ones.
func NewAWSIMDS(t testing.TB, iam *AWSIAM, roleARN string) *AWSIMDS {
	t.Helper()
	role, ok := iam.role(roleARN)
	if !ok {
		t.Fatalf("testenv: NewAWSIMDS: no role %s", roleARN)
	}
	m := &AWSIMDS{
		RoleARN:    roleARN,
		InstanceID: "i-" + hex.EncodeToString(awsRandomBytes(9))[:17],
		iam:        iam,
		roleName:   role.name,
		tokens:     make(map[string]time.Time),
	}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	m.URL = srv.URL
	return m
}

// Setenv points the SDK's instance-metadata client at the stand-in and
// switches it on (after IsolateAWSEnv switched it off). It uses t.Setenv:
// the test must not be parallel.
func (m *AWSIMDS) Setenv(t testing.TB) {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", m.URL)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
}

// CredentialFetches counts the credentials documents served.
func (m *AWSIMDS) CredentialFetches() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.credFetches
}

// Unauthorized counts the metadata requests refused for lack of a valid
// IMDSv2 token.
func (m *AWSIMDS) Unauthorized() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refused
}

const imdsCredsPath = "/latest/meta-data/iam/security-credentials/"

func (m *AWSIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/latest/api/token" {
		m.serveToken(w, r)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !m.validToken(r.Header.Get("X-aws-ec2-metadata-token")) {
		m.mu.Lock()
		m.refused++
		m.mu.Unlock()
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	switch r.URL.Path {
	case "/latest/meta-data/iam/info":
		m.serveJSON(w, map[string]string{
			"Code":               "Success",
			"LastUpdated":        time.Now().UTC().Format(time.RFC3339),
			"InstanceProfileArn": fmt.Sprintf("arn:aws:iam::%s:instance-profile/%s", m.iam.AccountID, m.roleName),
			"InstanceProfileId":  awsRandomID("AIPA"),
		})
	case imdsCredsPath:
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, m.roleName)
	case imdsCredsPath + m.roleName:
		creds, err := m.credentials()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		m.serveJSON(w, map[string]string{
			"Code":            "Success",
			"LastUpdated":     time.Now().UTC().Format(time.RFC3339),
			"Type":            "AWS-HMAC",
			"AccessKeyId":     creds.AccessKeyID,
			"SecretAccessKey": creds.SecretAccessKey,
			"Token":           creds.SessionToken,
			"Expiration":      creds.Expires.UTC().Format(time.RFC3339),
		})
	default:
		http.NotFound(w, r)
	}
}

func (m *AWSIMDS) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
	if err != nil || ttl < 1 || ttl > 21600 {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	token := awsRandomToken()
	m.mu.Lock()
	m.tokens[token] = time.Now().Add(time.Duration(ttl) * time.Second)
	m.mu.Unlock()
	w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprint(w, token)
}

func (m *AWSIMDS) validToken(token string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	expires, ok := m.tokens[token]
	return ok && time.Now().Before(expires)
}

// credentials returns the instance's current role credentials, issuing new
// ones when they are close to expiry.
func (m *AWSIMDS) credentials() (aws.Credentials, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.credFetches++
	now := time.Now()
	if c := m.current; c.AccessKeyID != "" {
		if c.Expires.Sub(now) > min(5*time.Minute, m.currentLife/3) {
			return c, nil
		}
	}
	creds, ok := m.iam.issue(m.RoleARN, m.InstanceID, 6*time.Hour, "imds")
	if !ok {
		return aws.Credentials{}, fmt.Errorf("role %s is gone", m.RoleARN)
	}
	m.current, m.currentLife = creds, creds.Expires.Sub(now)
	return creds, nil
}

func (m *AWSIMDS) serveJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
