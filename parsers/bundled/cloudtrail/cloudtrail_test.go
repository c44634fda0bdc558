package cloudtrail

import (
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/parsers/bundled/internal/parsertest"

	"github.com/soarkafka/soarkafka/soar"
)

// batch makes one message per value, on partition 0 from offset 100.
func batch(values ...[]byte) []soar.Message { return parsertest.Batch("cloudtrail", values...) }

func files(t testing.TB, names ...string) [][]byte { t.Helper(); return parsertest.Files(t, names...) }

func gz(b []byte) []byte { return parsertest.Gzip(b) }

// The seed samples and our EventBridge ones, alone and in one batch, with
// exact expected containers and artifacts.
func TestGolden(t *testing.T) {
	mixed := []string{"msk-log-file.json", "eventbridge-api-call.json", "eventbridge-console-login-failure.json", "root-console-login.json", "access-denied.json"}
	cases := map[string][]string{
		"msk-log-file":         {"msk-log-file.json"},
		"eventbridge-api-call": {"eventbridge-api-call.json"},
		"mixed-batch":          mixed,
	}
	parsertest.GoldenCases(t, ParseMessages, "cloudtrail", cases, "mixed-batch")
}

func TestErrors(t *testing.T) {
	ok := files(t, "access-denied.json")[0]
	cases := []struct {
		name  string
		value []byte
		want  string
	}{
		{"not JSON", files(t, "bad-not-json.txt")[0], "cloudtrail: topic cloudtrail message 0:101: value is not a JSON object"},
		{"not CloudTrail", files(t, "bad-not-cloudtrail.json")[0], "message 0:101: not a CloudTrail event, log file"},
		{"bad record", files(t, "bad-record.json")[0], "message 0:101: Records[1] is not a CloudTrail event"},
		{"EventBridge, not CloudTrail", files(t, "bad-eventbridge-detail.json")[0], `message 0:101: EventBridge event (detail-type "EC2 Instance State-change Notification") whose detail is not a CloudTrail event`},
		{"Records not a list", []byte(`{"Records": {}}`), "message 0:101: Records is not a list"},
		{"array", []byte(`[]`), "message 0:101: value is not a JSON object"},
		{"empty", []byte{}, "message 0:101: value is not a JSON object"},
		{"broken gzip", gz([]byte(`{"Records":[]}`))[:12], "message 0:101: soar: gunzip"},
		{"gzipped garbage", gz([]byte("garbage")), "message 0:101: value is not a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := ParseMessages("cloudtrail", batch(ok, c.value))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q (results %v)", err, c.want, res)
			}
			if res != nil {
				t.Fatalf("results with an error: %v", res)
			}
		})
	}
}

func TestSeverity(t *testing.T) {
	cases := []struct {
		event, want string
	}{
		{`{"eventName":"GetObject","eventSource":"s3.amazonaws.com"}`, "low"},
		{`{"eventName":"GetObject","eventSource":"s3.amazonaws.com","errorCode":"NoSuchKey"}`, "medium"},
		{`{"eventName":"GetObject","eventSource":"s3.amazonaws.com","userIdentity":{"type":"Root"}}`, "high"},
		{`{"eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","responseElements":{"ConsoleLogin":"Failure"}}`, "high"},
		{`{"eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","errorMessage":"Failed authentication"}`, "high"},
		{`{"eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","responseElements":{"ConsoleLogin":"Success"}}`, "low"},
	}
	for _, c := range cases {
		res, err := ParseMessages("t", batch([]byte(c.event)))
		if err != nil {
			t.Fatal(err)
		}
		if got := res[0].Artifacts[0].Severity; got != c.want || res[0].Container.Severity != c.want {
			t.Errorf("%s: severity %s (container %s), want %s", c.event, got, res[0].Container.Severity, c.want)
		}
	}
}

// Without an eventID, the message coordinates identify the event; inside
// a log file, with the record's index.
func TestFallbacks(t *testing.T) {
	res, err := ParseMessages("t", batch(
		[]byte(`{"eventName":"A","eventSource":"s3.amazonaws.com","userIdentity":{"userName":"joe","accountId":"1"}}`),
		[]byte(`{"Records":[{"eventName":"B","eventSource":"s3.amazonaws.com","userIdentity":{"principalId":"AID1"}},{"eventName":"C","eventSource":"s3.amazonaws.com","eventTime":"bad"}]}`),
		[]byte(`{"Records":[]}`),
	))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("%d containers, want 2 (account 1, unknown)", len(res))
	}
	a := res[0].Artifacts[0]
	if a.SourceDataIdentifier != "0:100" || a.CEF["suser"] != "joe" || a.CEFTypes["suser"][0] != "user name" || res[0].Container.Name != "CloudTrail s3.amazonaws.com in 1" {
		t.Errorf("single event: %+v in %+v", a, res[0].Container)
	}
	b, c := res[1].Artifacts[0], res[1].Artifacts[1]
	if b.SourceDataIdentifier != "0:101:0" || c.SourceDataIdentifier != "0:101:1" || b.CEF["suser"] != "AID1" || res[1].Container.SourceDataIdentifier != "cloudtrail:unknown:s3.amazonaws.com:0:101:0" {
		t.Errorf("log file: %+v %+v in %+v", b, c, res[1].Container)
	}
	if c.StartTime != "" || c.CEF["rt"] != "bad" || res[1].Container.StartTime != "" {
		t.Errorf("unparsable eventTime: %+v", c)
	}
	if *b.RunAutomation || c.RunAutomation != nil {
		t.Error("run_automation: want false on all but the last artifact of a container")
	}
	if res, err := ParseMessages("t", nil); err != nil || res == nil || len(res) != 0 {
		t.Errorf("empty batch: %v, %v", res, err)
	}
}

// BenchmarkCloudTrail parses batches of 500 CloudTrail log files of two
// events each (~1.8 KB per message).
func BenchmarkCloudTrail(b *testing.B) {
	parsertest.Benchmark(b, ParseMessages, files(b, "msk-log-file.json")[0], 500, 2)
}
