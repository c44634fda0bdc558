package actions

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

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
}

// MaxPollNowCount bounds poll now's artifact_count: poll now keeps the
// messages it reads in memory to choose the first ones of the topic.
const MaxPollNowCount = 100000

// ParseOnPollParams validates on poll's parameters, reporting every bad one.
func ParseOnPollParams(params map[string]any) (OnPollParams, error) {
	var p OnPollParams
	var errs []soarkafka.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, soarkafka.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	count := func(field string, min, max int) int {
		v, ok := params[field]
		if !ok || v == nil || v == "" {
			return 0
		}
		n, ok := soarkafka.JSONNumber(v)
		if !ok || n != math.Trunc(n) || n < float64(min) || n > float64(max) {
			bad(field, "must be a whole number from %d to %d, got %v", min, max, v)
			return 0
		}
		return int(n)
	}
	switch v := params["poll_now"].(type) {
	case nil:
	case bool:
		p.PollNow = v
	case string:
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("poll_now", "must be true or false, got %q", v)
		}
		p.PollNow = b
	default:
		bad("poll_now", "must be true or false, got %s", soarkafka.JSONType(v))
	}
	p.ArtifactCount = count("artifact_count", 1, MaxPollNowCount)
	p.ContainerCount = count("container_count", 0, math.MaxInt32)
	for _, ignored := range []string{"start_time", "end_time"} {
		if v, ok := params[ignored]; ok && v != nil && v != "" {
			if _, ok := soarkafka.JSONNumber(v); !ok {
				bad(ignored, "must be a number (it is accepted and ignored, as in the Splunk app), got %v", v)
			}
		}
	}
	if len(errs) > 0 {
		return p, &soarkafka.Error{Code: soarkafka.EINVALID, Message: "invalid on poll parameters", Fields: errs}
	}
	return p, nil
}

// OnPoll runs on poll: a poll of the target from its stored position, or
// with poll_now a read of artifact_count messages from the beginning of
// the topic that moves no position.
func (r *Runner) OnPoll(ctx context.Context, target Target, params map[string]any) (*Result, error) {
	p, err := ParseOnPollParams(params)
	if err != nil {
		return nil, err
	}
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
	res := NewResult(OnPoll, params)
	out, err := r.poller.Poll(ctx, req)
	if out != nil {
		for _, c := range out.Containers {
			res.Data = append(res.Data, map[string]any{"id": c.ID, "name": c.Name, "artifact_count": c.Artifacts, "created": c.Created})
		}
		res.Summary = pollSummary(out)
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

func pollSummary(out *poll.Result) map[string]any {
	parts := make([]any, len(out.Partitions))
	for i, p := range out.Partitions {
		parts[i] = map[string]any{"partition": p.Partition, "start_offset": p.Start, "end_offset": p.End,
			"log_end_offset": p.LogEnd, "lag": p.Lag}
	}
	gaps := make([]any, len(out.Gaps))
	for i, g := range out.Gaps {
		gaps[i] = map[string]any{"partition": g.Partition, "from": g.From, "to": g.To, "count": g.Count}
	}
	s := map[string]any{
		"messages_read": out.MessagesRead, "containers_created": out.ContainersCreated,
		"containers_updated": out.ContainersUpdated, "artifacts_created": out.ArtifactsCreated,
		"duplicates_skipped": out.DuplicatesSkipped, "dead_lettered": out.DeadLettered,
		"partitions": parts, "gaps": gaps, "lag": out.Lag, "stopped": out.Stopped, "parser": out.Parser,
		"poll_now": out.Kind == ingest.PollNow,
	}
	if len(out.Warnings) > 0 {
		s["warnings"] = out.Warnings
	}
	return s
}
