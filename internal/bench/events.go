package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// cloudTrailEvent is a realistic SOAR event: an AWS CloudTrail record, the
// kind of JSON a playbook forwards to Kafka.
type cloudTrailEvent struct {
	EventVersion       string            `json:"eventVersion"`
	UserIdentity       userIdentity      `json:"userIdentity"`
	EventTime          string            `json:"eventTime"`
	EventSource        string            `json:"eventSource"`
	EventName          string            `json:"eventName"`
	AWSRegion          string            `json:"awsRegion"`
	SourceIPAddress    string            `json:"sourceIPAddress"`
	UserAgent          string            `json:"userAgent"`
	RequestParameters  map[string]any    `json:"requestParameters"`
	ResponseElements   map[string]any    `json:"responseElements"`
	AdditionalData     map[string]string `json:"additionalEventData,omitempty"`
	RequestID          string            `json:"requestID"`
	EventID            string            `json:"eventID"`
	ReadOnly           bool              `json:"readOnly"`
	EventType          string            `json:"eventType"`
	ManagementEvent    bool              `json:"managementEvent"`
	RecipientAccountID string            `json:"recipientAccountId"`
	EventCategory      string            `json:"eventCategory"`
}

type userIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
}

// eventIDStamp is the eventID every pooled event carries; stamp overwrites
// its last 12 hex digits with the record's sequence number, so that every
// record sent is distinct while costing one small copy to make.
const eventIDStamp = "5f1c0e2a-9b7d-4e3f-8a6c-000000000000"

// eventPool holds pre-rendered compact events of about targetBytes each,
// and where in each the eventID's sequence digits sit.
type eventPool struct {
	events  [][]byte
	stampAt []int
	avg     int
}

var (
	eventSources = []struct{ source, name string }{
		{"s3.amazonaws.com", "GetObject"}, {"s3.amazonaws.com", "PutObject"},
		{"iam.amazonaws.com", "CreateAccessKey"}, {"iam.amazonaws.com", "AttachRolePolicy"},
		{"ec2.amazonaws.com", "RunInstances"}, {"ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"},
		{"sts.amazonaws.com", "AssumeRole"}, {"kms.amazonaws.com", "Decrypt"},
		{"signin.amazonaws.com", "ConsoleLogin"}, {"lambda.amazonaws.com", "UpdateFunctionCode20150331v2"},
	}
	regions    = []string{"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"}
	userAgents = []string{
		"aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12 prompt/off command/s3.cp",
		"Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.15.0 md/arch#x86_64 lang/python#3.12.2",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0 Safari/537.36",
		"aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.155.1",
		"console.amazonaws.com",
	}
	words = strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango")
)

// newEventPool renders n distinct events, deterministically (fixed seed),
// of sizes spread around targetBytes.
func newEventPool(n, targetBytes int) (*eventPool, error) {
	rng := rand.New(rand.NewPCG(20261123, 4))
	p := &eventPool{}
	total := 0
	for i := 0; i < n; i++ {
		ev := randomEvent(rng, i)
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		// Pad to a size drawn around the target with extra data, as real
		// events vary in size.
		want := targetBytes - targetBytes/8 + rng.IntN(targetBytes/4+1)
		if len(b) < want {
			ev.AdditionalData = map[string]string{"bytesTransferredIn": "0", "x-amz-id-2": ""}
			base, _ := json.Marshal(ev)
			var pad strings.Builder
			for pad.Len() < want-len(base) {
				pad.WriteString(words[rng.IntN(len(words))])
			}
			ev.AdditionalData["x-amz-id-2"] = pad.String()[:max(0, want-len(base))]
			if b, err = json.Marshal(ev); err != nil {
				return nil, err
			}
		}
		at := strings.Index(string(b), eventIDStamp)
		if at < 0 {
			return nil, fmt.Errorf("event %d: eventID not found", i)
		}
		p.events = append(p.events, b)
		p.stampAt = append(p.stampAt, at+len(eventIDStamp)-12)
		total += len(b)
	}
	p.avg = total / n
	return p, nil
}

func randomEvent(rng *rand.Rand, i int) cloudTrailEvent {
	src := eventSources[rng.IntN(len(eventSources))]
	account := fmt.Sprintf("%012d", 100000000000+rng.Int64N(899999999999))
	role := []string{"SecurityAudit", "DeployPipeline", "DataScience", "IncidentResponse"}[rng.IntN(4)]
	user := fmt.Sprintf("%s-%s", words[rng.IntN(len(words))], words[rng.IntN(len(words))])
	region := regions[rng.IntN(len(regions))]
	bucket := fmt.Sprintf("corp-%s-logs-%d", words[rng.IntN(len(words))], rng.IntN(100))
	return cloudTrailEvent{
		EventVersion: "1.09",
		UserIdentity: userIdentity{
			Type:        "AssumedRole",
			PrincipalID: fmt.Sprintf("AROA%016X:%s", rng.Uint64(), user),
			ARN:         fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", account, role, user),
			AccountID:   account,
		},
		EventTime:          fmt.Sprintf("2026-11-%02dT%02d:%02d:%02dZ", 1+i%28, rng.IntN(24), rng.IntN(60), rng.IntN(60)),
		EventSource:        src.source,
		EventName:          src.name,
		AWSRegion:          region,
		SourceIPAddress:    fmt.Sprintf("%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254)),
		UserAgent:          userAgents[rng.IntN(len(userAgents))],
		RequestParameters:  map[string]any{"bucketName": bucket, "key": fmt.Sprintf("year=2026/month=11/part-%05d.json.gz", rng.IntN(100000)), "Host": bucket + ".s3." + region + ".amazonaws.com"},
		ResponseElements:   nil,
		RequestID:          fmt.Sprintf("%016X", rng.Uint64()),
		EventID:            eventIDStamp,
		ReadOnly:           rng.IntN(2) == 0,
		EventType:          "AwsApiCall",
		ManagementEvent:    rng.IntN(3) == 0,
		RecipientAccountID: account,
		EventCategory:      "Management",
	}
}

// appendEvent appends record seq's event to dst: a pooled event with seq
// stamped into its eventID.
func (p *eventPool) appendEvent(dst []byte, seq int) []byte {
	i := seq % len(p.events)
	start := len(dst)
	dst = append(dst, p.events[i]...)
	const hex = "0123456789abcdef"
	digits := dst[start+p.stampAt[i] : start+p.stampAt[i]+12]
	v := uint64(seq)
	for j := 11; j >= 0; j-- {
		digits[j] = hex[v&0xf]
		v >>= 4
	}
	return dst
}

// ndjsonSize is the size of n events as NDJSON, one a line: an event's
// size depends only on its place in the pool.
func (p *eventPool) ndjsonSize(n int) int64 {
	var size int64
	for i := range n {
		size += int64(len(p.events[i%len(p.events)])) + 1
	}
	return size
}

// jsonList returns n events as one compact JSON list.
func (p *eventPool) jsonList(n int) []byte {
	b := make([]byte, 0, n*(p.avg+1)+2)
	b = append(b, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = p.appendEvent(b, i)
	}
	return append(b, ']')
}
