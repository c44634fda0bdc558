package actions

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/poll"
)

// OnPollParams are the parameters of on poll. The seed's start_time,
// end_time and container_id are accepted and ignored, as the Splunk app
// ignores them; container_count, which the Splunk app ignored too, caps
// the containers a poll creates.
type OnPollParams struct {
	PollNow bool
	// ArtifactCount is how many messages poll now reads (default 10).
	ArtifactCount int
	// ContainerCount caps the containers created; 0 is no cap.
	ContainerCount int

	echo Echo
}

func (*OnPollParams) Identifier() string { return OnPoll }
func (p *OnPollParams) Echo() Echo       { return p.echo }
func (*OnPollParams) Release()           {}

// MaxPollNowCount bounds poll now's artifact_count: poll now keeps the
// messages it reads in memory to choose the first ones of the topic.
const MaxPollNowCount = 100000

// DecodeOnPoll decodes on poll's parameters, reporting every bad one.
func DecodeOnPoll(fields Fields) (OnPollParams, error) {
	p := OnPollParams{echo: echo(fields)}
	var r fieldReader
	count := func(field string, v jsontext.Value, min, max int) int {
		n, ok := number(v)
		if !ok || n != math.Trunc(n) || n < float64(min) || n > float64(max) {
			r.bad(field, "must be a whole number from %d to %d, got %s", min, max, shown(v))
			return 0
		}
		return int(n)
	}
	for _, f := range fields {
		v := f.Value
		switch f.Name {
		case "poll_now":
			p.PollNow = r.boolean(f.Name, v)
		case "artifact_count":
			if !absent(v) {
				p.ArtifactCount = count(f.Name, v, 1, MaxPollNowCount)
			}
		case "container_count":
			if !absent(v) {
				p.ContainerCount = count(f.Name, v, 0, math.MaxInt32)
			}
		case "start_time", "end_time":
			if _, ok := number(v); !absent(v) && !ok {
				r.bad(f.Name, "must be a number (it is accepted and ignored, as in the Splunk app), got %s", shown(v))
			}
		}
	}
	return p, r.err("on poll")
}

// OnPoll runs on poll: a poll of the target from its stored position, or
// with poll_now a read of artifact_count messages from the beginning of
// the topic that moves no position.
func (r *Runner) OnPoll(ctx context.Context, target Target, p *OnPollParams) (*Result, error) {
	if r.poller == nil {
		return nil, soarkafka.Errorf(soarkafka.EUNAVAILABLE, "on poll is not available: this server has no database to store containers in")
	}
	asset := target.Asset
	if asset == "" {
		if target.SOARAssetID == "" {
			return nil, soarkafka.Errorf(soarkafka.EINVALID,
				"on poll with an inline config needs the SOAR app-run document's asset_id, to keep the poll's position under; give asset_id, or poll a stored asset by name")
		}
		asset = InlineAssetKey(target.SOARAssetID)
	}
	req := poll.Request{Asset: asset, Config: target.Config, Kind: ingest.PollAction, MaxContainers: p.ContainerCount}
	if p.PollNow {
		req.Kind, req.Count = ingest.PollNow, p.ArtifactCount
	}
	res := NewResult(OnPoll, p.echo)
	out, err := r.poller.Poll(ctx, req)
	if out != nil {
		for _, c := range out.Containers {
			res.Data = append(res.Data, PolledContainer{ID: c.ID, Name: c.Name, ArtifactCount: c.Artifacts, Created: c.Created})
		}
		if out.Partitions == nil { // [] in the summary, not null
			out.Partitions = []poll.PartitionResult{}
		}
		if out.Gaps == nil {
			out.Gaps = []ingest.Gap{}
		}
		res.Summary = &PollSummary{Result: out, PollNow: out.Kind == ingest.PollNow}
		res.ResultSummary = ResultSummary{TotalObjects: out.MessagesRead, TotalObjectsSuccessful: out.MessagesRead - failedMessages(out, err)}
	}
	if err != nil {
		var app *soarkafka.Error
		if errors.As(err, &app) || isPollFailure(err) {
			return res.Fail(err.Error()), nil
		}
		if ctx.Err() != nil {
			return res.Fail("on poll was cancelled: " + err.Error()), nil
		}
		return nil, err
	}
	if out.Stopped == poll.StoppedContinuous {
		res.Message = fmt.Sprintf("Asset %s is polled continuously: its messages are stored as they come, so there was nothing to poll", asset)
		return res, nil
	}
	containers := out.ContainersCreated + out.ContainersUpdated
	res.Message = fmt.Sprintf("Ingested %d messages into %s (lag %d)", out.MessagesRead, plural(containers, "container"), out.Lag)
	if out.DeadLettered > 0 {
		res.Message += fmt.Sprintf("; %d dead-lettered", out.DeadLettered)
	}
	if len(out.Gaps) > 0 {
		var lost int64
		for _, g := range out.Gaps {
			lost += g.Count
		}
		res.Message += fmt.Sprintf("; %d messages deleted by retention before they were ingested (gap recorded)", lost)
	}
	return res, nil
}

// InlineAssetKey is the key an inline configuration's poll state is kept
// under: the SOAR's asset id, in a namespace no stored asset name can
// take (names cannot hold a colon).
func InlineAssetKey(soarAssetID string) string { return "soar:" + soarAssetID }

// isPollFailure reports errors that are the poll's outcome rather than the
// server's fault: a poison message.
func isPollFailure(err error) bool {
	var pe *poll.PoisonError
	return errors.As(err, &pe)
}

// failedMessages is 1 for a poll stopped at a poison message, else 0.
func failedMessages(out *poll.Result, err error) int {
	if isPollFailure(err) && out.MessagesRead > 0 {
		return 1
	}
	return 0
}

// PolledContainer is one entry of on poll's result data: a container the
// poll stored or added artifacts to.
type PolledContainer struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	ArtifactCount int    `json:"artifact_count"`
	// Created is false for a container the poll added artifacts to.
	Created bool `json:"created"`
}

// PollSummary is on poll's result summary: the poll's result as it
// encodes itself, and whether it was a poll now.
type PollSummary struct {
	*poll.Result
	PollNow bool `json:"poll_now"`
}
