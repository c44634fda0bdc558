package testenv

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// AWSSTS is a stand-in for the AWS Security Token Service of an AWSIAM
// account, speaking the query protocol aws-sdk-go-v2's sts client speaks
// (form-encoded POST, XML answers). It checks each request's SigV4
// Authorization header against the account's credentials and answers
// AssumeRole and GetCallerIdentity; errors are STS's own XML (AccessDenied,
// InvalidClientTokenId, SignatureDoesNotMatch, ExpiredToken…), so the SDK
// surfaces their codes (smithy.APIError).
//
// Point an sts client at it with sts.Options.BaseEndpoint = &s.URL and
// Region = the account's region.
type AWSSTS struct {
	// URL is the endpoint, http://127.0.0.1:<port>.
	URL string

	iam *AWSIAM

	mu    sync.Mutex
	calls []AWSSTSCall
}

// AWSSTSCall is one request the STS stand-in answered.
type AWSSTSCall struct {
	At          time.Time
	Action      string // "AssumeRole", "GetCallerIdentity"…
	AccessKeyID string // the caller's, from its signature
	RoleARN     string // AssumeRole's RoleArn
	ExternalID  string // AssumeRole's ExternalId
	SessionName string // AssumeRole's RoleSessionName
	// IssuedKeyID is the access key id of the credentials AssumeRole issued.
	IssuedKeyID string
	ErrorCode   string // empty on success
}

// NewAWSSTS starts the STS stand-in for the account; it stops when the test
// ends.
func NewAWSSTS(t testing.TB, iam *AWSIAM) *AWSSTS {
	t.Helper()
	s := &AWSSTS{iam: iam}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Calls lists the requests answered so far, oldest first.
func (s *AWSSTS) Calls() []AWSSTSCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// AssumeRoleCalls counts the successful AssumeRole calls so far.
func (s *AWSSTS) AssumeRoleCalls() int {
	n := 0
	for _, c := range s.Calls() {
		if c.Action == "AssumeRole" && c.ErrorCode == "" {
			n++
		}
	}
	return n
}

const stsXMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"

// stsError is an STS error answer.
type stsError struct {
	status  int
	code    string
	message string
}

func (s *AWSSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			s.fail(w, AWSSTSCall{}, &stsError{http.StatusBadRequest, "MalformedQueryString", err.Error()})
			return
		}
		for k, v := range form {
			params[k] = v
		}
	}
	call := AWSSTSCall{At: time.Now(), Action: params.Get("Action")}

	caller, serr := s.iam.verifySigV4(r, body, "sts", call.At)
	call.AccessKeyID = caller.accessKeyID
	if serr != nil {
		s.fail(w, call, serr)
		return
	}
	switch call.Action {
	case "AssumeRole":
		s.assumeRole(w, call, caller, params)
	case "GetCallerIdentity":
		s.record(call)
		s.reply(w, getCallerIdentityResponse{
			Xmlns: stsXMLNS,
			Result: getCallerIdentityResult{
				Arn:     caller.principal,
				UserID:  caller.userID,
				Account: s.iam.AccountID,
			},
			RequestID: awsRequestID(),
		})
	default:
		s.fail(w, call, &stsError{http.StatusBadRequest, "InvalidAction", fmt.Sprintf("Could not find operation %s for version 2011-06-15", call.Action)})
	}
}

func (s *AWSSTS) assumeRole(w http.ResponseWriter, call AWSSTSCall, caller awsCaller, params url.Values) {
	call.RoleARN = params.Get("RoleArn")
	call.ExternalID = params.Get("ExternalId")
	call.SessionName = params.Get("RoleSessionName")
	if n := len(call.SessionName); n < 2 || n > 64 {
		s.fail(w, call, &stsError{http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64"})
		return
	}
	lifetime := time.Hour
	if d := params.Get("DurationSeconds"); d != "" {
		secs, err := strconv.Atoi(d)
		if err != nil || secs < 900 || secs > 43200 {
			s.fail(w, call, &stsError{http.StatusBadRequest, "ValidationError", fmt.Sprintf("1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", d)})
			return
		}
		lifetime = time.Duration(secs) * time.Second
	}
	denied := &stsError{http.StatusForbidden, "AccessDenied", fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller.principal, call.RoleARN)}
	role, ok := s.iam.role(call.RoleARN)
	if !ok || (role.externalID != "" && subtle.ConstantTimeCompare([]byte(call.ExternalID), []byte(role.externalID)) != 1) {
		s.fail(w, call, denied)
		return
	}
	creds, ok := s.iam.issue(call.RoleARN, call.SessionName, lifetime, "sts")
	if !ok { // the role went away meanwhile
		s.fail(w, call, denied)
		return
	}
	call.IssuedKeyID = creds.AccessKeyID
	s.record(call)
	cred, _ := s.iam.credential(creds.AccessKeyID)
	s.reply(w, assumeRoleResponse{
		Xmlns: stsXMLNS,
		Result: assumeRoleResult{
			AssumedRoleUser: assumedRoleUser{Arn: cred.principal, AssumedRoleID: cred.userID},
			Credentials: stsCredentials{
				AccessKeyID:     creds.AccessKeyID,
				SecretAccessKey: creds.SecretAccessKey,
				SessionToken:    creds.SessionToken,
				Expiration:      creds.Expires.UTC().Format(time.RFC3339),
			},
		},
		RequestID: awsRequestID(),
	})
}

func (s *AWSSTS) record(call AWSSTSCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
}

func (s *AWSSTS) fail(w http.ResponseWriter, call AWSSTSCall, e *stsError) {
	call.ErrorCode = e.code
	s.record(call)
	typ := "Sender"
	if e.status >= 500 {
		typ = "Receiver"
	}
	var resp stsErrorResponse
	resp.Xmlns = stsXMLNS
	resp.Error.Type, resp.Error.Code, resp.Error.Message = typ, e.code, e.message
	resp.RequestID = awsRequestID()
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	_ = xml.NewEncoder(w).Encode(resp)
}

func (s *AWSSTS) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "text/xml")
	_ = xml.NewEncoder(w).Encode(v)
}

type stsErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

type assumeRoleResponse struct {
	XMLName   xml.Name         `xml:"AssumeRoleResponse"`
	Xmlns     string           `xml:"xmlns,attr"`
	Result    assumeRoleResult `xml:"AssumeRoleResult"`
	RequestID string           `xml:"ResponseMetadata>RequestId"`
}

type assumeRoleResult struct {
	AssumedRoleUser assumedRoleUser `xml:"AssumedRoleUser"`
	Credentials     stsCredentials  `xml:"Credentials"`
}

type assumedRoleUser struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type getCallerIdentityResponse struct {
	XMLName   xml.Name                `xml:"GetCallerIdentityResponse"`
	Xmlns     string                  `xml:"xmlns,attr"`
	Result    getCallerIdentityResult `xml:"GetCallerIdentityResult"`
	RequestID string                  `xml:"ResponseMetadata>RequestId"`
}

type getCallerIdentityResult struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

// awsCaller is who signed a request.
type awsCaller struct {
	accessKeyID string
	awsCredential
}

// verifySigV4 checks a request signed in its Authorization header
// (AWS4-HMAC-SHA256) for service: known access key, session token valid,
// scope in the account's region, date within 5 minutes, and the signature
// recomputed with aws-sdk-go-v2's signer over the headers it names. The
// caller's access key id is returned even on error, when readable.
func (a *AWSIAM) verifySigV4(r *http.Request, body []byte, service string, now time.Time) (awsCaller, *stsError) {
	var caller awsCaller
	algorithm, rest, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if algorithm != "AWS4-HMAC-SHA256" {
		return caller, &stsError{http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token"}
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return caller, &stsError{http.StatusBadRequest, "IncompleteSignature", "Authorization header requires Credential, SignedHeaders and Signature"}
	}
	caller.accessKeyID = scope[0]
	date, region := scope[1], scope[2]
	if scope[3] != service || scope[4] != "aws4_request" {
		return caller, &stsError{http.StatusForbidden, "SignatureDoesNotMatch", fmt.Sprintf("Credential should be scoped to correct service: '%s'.", service)}
	}
	if region != a.Region {
		return caller, &stsError{http.StatusForbidden, "SignatureDoesNotMatch", fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", region)}
	}
	signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || date != signedAt.Format("20060102") {
		return caller, &stsError{http.StatusBadRequest, "IncompleteSignature", "X-Amz-Date is missing or does not match the credential date"}
	}
	if d := now.Sub(signedAt); d > 5*time.Minute || d < -5*time.Minute {
		return caller, &stsError{http.StatusForbidden, "SignatureDoesNotMatch", "Signature expired: the request time is more than 5 minutes from the server's"}
	}
	cred, ok := a.credential(caller.accessKeyID)
	if !ok {
		return caller, &stsError{http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	caller.awsCredential = cred
	token := r.Header.Get("X-Amz-Security-Token")
	switch {
	case cred.token == "" && token != "",
		cred.token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(cred.token)) != 1:
		return caller, &stsError{http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."}
	case cred.token != "" && !now.Before(cred.expires):
		return caller, &stsError{http.StatusBadRequest, "ExpiredToken", "The security token included in the request is expired"}
	}

	// Rebuild the request with only the headers the client signed; the
	// signer adds host, content-length, X-Amz-Date and the token itself.
	signedHeaders := strings.Split(fields["SignedHeaders"], ";")
	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return caller, &stsError{http.StatusBadRequest, "MalformedQueryString", err.Error()}
	}
	for _, h := range signedHeaders {
		switch h {
		case "host":
		case "content-length":
			req.ContentLength = int64(len(body))
		default:
			req.Header[textproto.CanonicalMIMEHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: caller.accessKeyID, SecretAccessKey: cred.secret, SessionToken: token},
		req, hex.EncodeToString(sum[:]), service, region, signedAt)
	if err != nil {
		return caller, &stsError{http.StatusInternalServerError, "InternalFailure", err.Error()}
	}
	want := map[string]string{}
	_, wantRest, _ := strings.Cut(req.Header.Get("Authorization"), " ")
	for _, part := range strings.Split(wantRest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		want[k] = v
	}
	if want["SignedHeaders"] != fields["SignedHeaders"] ||
		subtle.ConstantTimeCompare([]byte(want["Signature"]), []byte(fields["Signature"])) != 1 {
		return caller, &stsError{http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return caller, nil
}
