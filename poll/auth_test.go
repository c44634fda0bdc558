package poll_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/kafka"
	"github.com/soarkafka/soarkafka/poll"
)

// On poll reads over Kerberos (GSSAPI over TLS) and over AWS MSK IAM: the
// poll's consumer, its dead-letter producer and its consumer-group commit
// all log in as the asset says.
func TestPollOverKerberosAndIAM(t *testing.T) {
	certs := testenv.NewTLSCerts(t)
	db := openStore(t, testenv.SQLiteURL(t))
	poller := poll.New(db, newParsers(t, db), nil, poll.WithAccess(tempAccess(t)))

	kdc := testenv.NewKDC(t)
	kdc.AddUser("alice", "alice-pw")
	service := kdc.AddService("kafka/127.0.0.1")
	gs := testenv.NewGSSAPIBroker(t, service, "kafka/127.0.0.1@"+kdc.Realm(), testenv.GSSAPITLS(certs.ServerTLS()))
	krb := testenv.NewKafka(t, append(gs.KafkaOpts(), kfake.SeedTopics(2, topic))...)
	plainGS := testenv.NewGSSAPIBroker(t, service, "kafka/127.0.0.1@"+kdc.Realm())
	krbPlain := testenv.NewKafka(t, append(plainGS.KafkaOpts(), kfake.SeedTopics(2, topic))...)

	iam := testenv.NewAWSIAM(t)
	testenv.IsolateAWSEnv(t, iam.Region)
	msk := testenv.NewMSKIAMKafka(t, iam, certs.ServerTLS(), kfake.SeedTopics(2, topic))
	alice := iam.AddUser("alice")

	for _, tc := range []struct {
		name    string
		cluster *kfake.Cluster
		doc     map[string]any
	}{
		{"kerberos", krb, map[string]any{"use_kerberos": true, "use_ssl": true, "kerberos": map[string]any{
			"principal": "alice", "keytab": base64.StdEncoding.EncodeToString(kdc.Keytab("alice")), "krb5_conf": kdc.Krb5Conf()}}},
		{"kerberos without TLS", krbPlain, map[string]any{"use_kerberos": true, "kerberos": map[string]any{
			"principal": "alice", "password": "alice-pw", "krb5_conf": kdc.Krb5Conf()}}},
		{"aws iam", msk.Cluster, map[string]any{"sasl_mechanism": "AWS_MSK_IAM", "aws_iam": map[string]any{
			"region": iam.Region, "access_key_id": alice.AccessKeyID, "secret_access_key": alice.SecretAccessKey}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := map[string]any{"hosts": strings.Join(tc.cluster.ListenAddrs(), ","), "topic": topic, "read_from_beginning": true, "timeout": 5000}
			if tc.cluster != krbPlain {
				doc["ca_cert"] = certs.CAFile
			}
			for k, v := range tc.doc {
				doc[k] = v
			}
			cfg, err := assets.Decode(doc, assets.DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// Produce with the product's own client and settings.
			rec := poll.Request{Asset: tc.name, Config: cfg, Kind: ingest.PollScheduled}
			produceWithAsset(t, cfg, 10)
			res, err := poller.Poll(t.Context(), rec)
			if err != nil {
				t.Fatal(err)
			}
			if res.MessagesRead != 10 || res.ArtifactsCreated != 10 || len(res.Warnings) != 0 {
				t.Fatalf("poll = %+v", res)
			}
		})
	}
	if len(gs.Principals()) == 0 || len(plainGS.Principals()) == 0 || len(msk.AuthenticatedKeys()) == 0 {
		t.Fatalf("brokers saw no login: kerberos %v, iam %v", gs.Principals(), msk.AuthenticatedKeys())
	}
}

// tempAccess allows every host and the files under the temporary
// directory, where testenv writes certificates.
func tempAccess(t *testing.T) kafka.Access {
	t.Helper()
	files, err := kafka.NewFilePolicy([]string{os.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Access{Files: files}
}

// produceWithAsset produces n messages to the asset's topic with a client
// built from the asset itself (its TLS and SASL).
func produceWithAsset(t *testing.T, cfg assets.Config, n int) {
	t.Helper()
	cl, err := tempAccess(t).NewClient(cfg, nil, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: cfg.Topic, Value: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce over the asset's login: %v", err)
	}
}
