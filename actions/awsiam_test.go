package actions

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

// iamAsset is an AWS_MSK_IAM asset on the cluster, with the aws_iam block.
func iamAsset(t *testing.T, k *testenv.MSKIAMKafka, certs *testenv.TLSCerts, awsIAM map[string]any) assets.Config {
	t.Helper()
	cfg, err := assets.Decode(map[string]any{"hosts": k.Cluster.ListenAddrs()[0], "topic": "alerts",
		"sasl_mechanism": "AWS_MSK_IAM", "ca_cert": certs.CAFile, "aws_iam": awsIAM}, assets.DecodeOptions{})
	if err != nil {
		t.Fatalf("assets.Decode: %v", err)
	}
	return cfg
}

// Every credential source works through the asset, over TLS, for test
// connectivity and post data: static keys, a profile, the environment,
// instance metadata, and a role assumed with its external id; the broker
// verified our SigV4 signature for the asset's region.
func TestAWSIAMCredentialSources(t *testing.T) {
	iam := testenv.NewAWSIAM(t)
	testenv.IsolateAWSEnv(t, "us-east-2") // a region of its own: the asset's is what we sign for
	certs := testenv.NewTLSCerts(t)
	k := testenv.NewMSKIAMKafka(t, iam, certs.ServerTLS(), kfake.SeedTopics(1, "alerts"))
	sts := testenv.NewAWSSTS(t, iam)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	region := "eu-west-1"

	alice := iam.AddUser("alice")
	bob := iam.AddUser("bob")
	carol := iam.AddUser("carol")
	role := iam.AddRole("kafka-reader", "ext-42")
	profiles := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(profiles, []byte("[soc]\naws_access_key_id = "+bob.AccessKeyID+"\naws_secret_access_key = "+bob.SecretAccessKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", profiles)
	imds := testenv.NewAWSIMDS(t, iam, iam.AddRole("instance", ""))

	r, _ := newTestRunner(testStepTimeout)
	t.Cleanup(r.Close)
	for _, tc := range []struct {
		name   string
		awsIAM map[string]any
		setup  func(t *testing.T)
		want   string // access key id the broker saw, or its prefix
	}{
		{"static keys", map[string]any{"region": region, "access_key_id": alice.AccessKeyID, "secret_access_key": alice.SecretAccessKey}, nil, alice.AccessKeyID},
		{"profile", map[string]any{"region": region, "profile": "soc"}, nil, bob.AccessKeyID},
		{"environment", map[string]any{"region": region}, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", carol.AccessKeyID)
			t.Setenv("AWS_SECRET_ACCESS_KEY", carol.SecretAccessKey)
		}, carol.AccessKeyID},
		{"assume role", map[string]any{"region": region, "access_key_id": alice.AccessKeyID, "secret_access_key": alice.SecretAccessKey,
			"assume_role": role, "external_id": "ext-42", "session_name": "soc-ingest"}, nil, "ASIA"},
		{"instance metadata", map[string]any{"region": region}, func(t *testing.T) { imds.Setenv(t) }, "ASIA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			cfg := iamAsset(t, k, certs, tc.awsIAM)
			before := len(k.Authentications())
			wantAssetWorks(t, r, cfg, "iam "+tc.name)
			auths := k.Authentications()[before:]
			// The broker only accepts signatures for the account's region
			// (eu-west-1), and the process's AWS_REGION is us-east-2: the
			// asset's region is the one signed for.
			if len(auths) == 0 || !strings.HasPrefix(auths[0].AccessKeyID, tc.want) {
				t.Fatalf("broker authentications %+v, want key %s…", auths, tc.want)
			}
			if tc.name == "assume role" && !strings.HasSuffix(auths[0].Principal, "assumed-role/kafka-reader/soc-ingest") {
				t.Errorf("principal %s, want the assumed role's session", auths[0].Principal)
			}
		})
	}
	if sts.AssumeRoleCalls() == 0 {
		t.Error("the assume-role case did not call STS")
	}
}

// Test connectivity names each AWS IAM failure and its fix.
func TestAWSIAMFailuresNamed(t *testing.T) {
	iam := testenv.NewAWSIAM(t)
	testenv.IsolateAWSEnv(t, "eu-west-1")
	certs := testenv.NewTLSCerts(t)
	k := testenv.NewMSKIAMKafka(t, iam, certs.ServerTLS(), kfake.SeedTopics(1, "alerts"))
	sts := testenv.NewAWSSTS(t, iam)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	alice := iam.AddUser("alice")
	role := iam.AddRole("kafka-reader", "ext-42")
	host := k.Cluster.ListenAddrs()[0]
	r, _ := newTestRunner(testStepTimeout)
	t.Cleanup(r.Close)

	for _, tc := range []struct {
		name   string
		awsIAM map[string]any
		parts  []string
	}{
		{"no credentials", map[string]any{"region": "eu-west-1"}, []string{"AWS credentials failed", "no credentials were found in the default chain"}},
		{"wrong secret", map[string]any{"region": "eu-west-1", "access_key_id": alice.AccessKeyID, "secret_access_key": "wrong"},
			[]string{"AWS IAM login failed", "the broker rejected the signed login: check aws_iam.region (eu-west-1)"}},
		{"wrong region", map[string]any{"region": "us-west-2", "access_key_id": alice.AccessKeyID, "secret_access_key": alice.SecretAccessKey},
			[]string{"AWS IAM login failed", "check aws_iam.region (us-west-2) is the cluster's region"}},
		{"role denied", map[string]any{"region": "eu-west-1", "access_key_id": alice.AccessKeyID, "secret_access_key": alice.SecretAccessKey,
			"assume_role": "arn:aws:iam::" + strings.Split(role, ":")[4] + ":role/unknown"},
			[]string{"AWS credentials failed", "STS refused to assume role", "(AccessDenied)"}},
		{"wrong external id", map[string]any{"region": "eu-west-1", "access_key_id": alice.AccessKeyID, "secret_access_key": alice.SecretAccessKey,
			"assume_role": role, "external_id": "wrong"},
			[]string{"AWS credentials failed", "STS refused to assume role " + role + " (AccessDenied)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res := runConnectivity(t, r, iamAsset(t, k, certs, tc.awsIAM))
			wantFailed(t, res, "broker "+host+": ", tc.parts...)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
	if keys := k.AuthenticatedKeys(); len(keys) != 0 {
		t.Errorf("the broker accepted %v", keys)
	}
}

// A long-running asset keeps logging in while its assumed-role credentials
// expire (every 15 s here) and the broker makes connections re-authenticate
// every 5 s: the credentials are refreshed from STS before they run out.
func TestAWSIAMLongRunningAssetRefreshesCredentials(t *testing.T) {
	iam := testenv.NewAWSIAM(t)
	testenv.IsolateAWSEnv(t, iam.Region)
	certs := testenv.NewTLSCerts(t)
	k := testenv.NewMSKIAMKafka(t, iam, certs.ServerTLS(), kfake.SeedTopics(1, "alerts"))
	k.SetSessionLifetime(5 * time.Second)
	sts := testenv.NewAWSSTS(t, iam)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	alice := iam.AddUser("alice")
	role := iam.AddRole("kafka-writer", "")
	iam.SetCredentialLifetime(15 * time.Second)
	cfg := iamAsset(t, k, certs, map[string]any{"region": iam.Region, "access_key_id": alice.AccessKeyID,
		"secret_access_key": alice.SecretAccessKey, "assume_role": role})
	r, _ := newTestRunner(testStepTimeout)
	t.Cleanup(r.Close)

	start := time.Now()
	for i := 0; time.Since(start) < 40*time.Second; i++ {
		res, err := runParams(context.Background(), t, r, PostData, Target{Asset: "long-running", Config: cfg},
			map[string]any{"data_type": "string", "data": "m", "topic": "alerts", "timeout": 5})
		if err != nil || res.Status != StatusSuccess {
			t.Fatalf("post data %d at %s: %v %s (failures %+v)", i, time.Since(start).Round(time.Second), err, res.Message, k.Failures())
		}
		time.Sleep(1500 * time.Millisecond)
	}
	keys := map[string]bool{}
	reauths := 0
	for _, a := range k.Authentications() {
		keys[a.AccessKeyID] = true
		if a.Reauthentication {
			reauths++
		}
	}
	if sts.AssumeRoleCalls() < 3 || len(keys) < 3 || reauths == 0 {
		t.Fatalf("%d AssumeRole calls, %d distinct keys, %d re-authentications over 40 s of 15 s credentials", sts.AssumeRoleCalls(), len(keys), reauths)
	}
}
