package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/soarkafka/soarkafka/assets"
)

// mskIAMService is the SigV4 service name of MSK's IAM authentication.
const mskIAMService = "kafka-cluster"

// emptyPayloadHash is the SHA-256 of an empty body, which the presigned
// request MSK verifies has.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// awsIAMMechanism builds SASL AWS_MSK_IAM from the asset's aws_iam block:
// credentials from static keys, a shared-config profile, or the standard
// chain (environment, shared files, web identity, container and EC2
// instance metadata), optionally exchanged for a role's with STS
// AssumeRole. They are cached and refreshed before they expire, assumed-role
// sessions included, so a long-running asset keeps logging in.
//
// The mechanism is ours rather than franz-go's sasl/aws: that one takes
// the region from the broker's host name, or from the process-wide
// AWS_REGION, and cannot sign for each asset's region. The signature is
// aws-sdk-go-v2's own SigV4 presigning.
func awsIAMMechanism(cfg assets.Config) (sasl.Mechanism, error) {
	a := cfg.AWSIAM
	if a.Region == "" {
		return nil, fieldError("aws_iam.region", "required for AWS_MSK_IAM: the region of the MSK cluster (e.g. eu-west-1)")
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(a.Region)}
	if a.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(awscreds.NewStaticCredentialsProvider(a.AccessKeyID, a.SecretAccessKey, a.SessionToken)))
	}
	if a.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(a.Profile))
	}
	// Loading reads the shared config files; credentials are fetched
	// lazily, at the first login.
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDialTimeout)
	defer cancel()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		field := "aws_iam"
		if a.Profile != "" {
			field = "aws_iam.profile"
		}
		return nil, fieldError(field, "load the AWS configuration: %v", err)
	}
	creds := awsCfg.Credentials
	if a.AssumeRole != "" {
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), a.AssumeRole, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = a.SessionName
			if o.RoleSessionName == "" {
				o.RoleSessionName = "soarkafka"
			}
			if a.ExternalID != "" {
				o.ExternalID = aws.String(a.ExternalID)
			}
			if a.SessionDuration > 0 {
				o.Duration = time.Duration(a.SessionDuration) * time.Second
			}
		})
		// Refreshed a minute before they expire, so that no login signs
		// with credentials that run out while the broker checks them.
		creds = aws.NewCredentialsCache(provider, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = time.Minute })
	}
	if creds == nil {
		return nil, fieldError("aws_iam", "no AWS credentials source: give aws_iam.access_key_id and aws_iam.secret_access_key, aws_iam.profile, or run where the default credential chain finds credentials")
	}
	return &mskIAM{region: a.Region, role: a.AssumeRole, creds: creds, signer: v4.NewSigner()}, nil
}

// mskIAM is SASL AWS_MSK_IAM: one SASLAuthenticate carrying a SigV4
// presigned "kafka-cluster:Connect" request for the broker's host.
type mskIAM struct {
	region string
	role   string
	creds  aws.CredentialsProvider
	signer *v4.Signer
}

func (*mskIAM) Name() string { return assets.MechanismAWSMSKIAM }

func (m *mskIAM) Authenticate(ctx context.Context, host string) (sasl.Session, []byte, error) {
	creds, err := m.creds.Retrieve(ctx)
	if err != nil {
		return nil, nil, &AWSCredentialsError{Role: m.role, Err: err}
	}
	payload, err := m.payload(ctx, creds, host, time.Now())
	if err != nil {
		return nil, nil, err
	}
	return mskIAMSession{}, payload, nil
}

// payload is the JSON MSK expects: the presigned request's query
// parameters, lower-cased, with the host, version and user agent.
func (m *mskIAM) payload(ctx context.Context, creds aws.Credentials, host string, now time.Time) ([]byte, error) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	q := url.Values{}
	q.Set("Action", mskIAMService+":Connect")
	q.Set("X-Amz-Expires", "300")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("aws_iam: build the signed request for %s: %w", host, err)
	}
	signed, _, err := m.signer.PresignHTTP(ctx, creds, req, emptyPayloadHash, mskIAMService, m.region, now.UTC())
	if err != nil {
		return nil, fmt.Errorf("aws_iam: sign the login to %s: %w", host, err)
	}
	u, err := url.Parse(signed)
	if err != nil {
		return nil, fmt.Errorf("aws_iam: signed request: %w", err)
	}
	fields := map[string]string{"version": "2020_10_22", "host": host, "user-agent": ClientID}
	for k, v := range u.Query() {
		fields[strings.ToLower(k)] = v[0]
	}
	fields["action"] = mskIAMService + ":Connect"
	return json.Marshal(fields)
}

type mskIAMSession struct{}

// Challenge accepts the broker's answer: MSK answers a JSON object with the
// request id; an empty answer is a failed login.
func (mskIAMSession) Challenge(resp []byte) (bool, []byte, error) {
	if len(resp) == 0 {
		return false, nil, errors.New("AWS_MSK_IAM: the broker answered the login with nothing")
	}
	return true, nil, nil
}

// AWSCredentialsError is a login that did not start: no AWS credentials
// could be had (none found, or STS refused the role).
type AWSCredentialsError struct {
	Role string
	Err  error
}

func (e *AWSCredentialsError) Error() string {
	if e.Role != "" {
		return fmt.Sprintf("AWS credentials for role %s: %v", e.Role, e.Err)
	}
	return fmt.Sprintf("AWS credentials: %v", e.Err)
}

func (e *AWSCredentialsError) Unwrap() error { return e.Err }
