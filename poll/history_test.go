package poll_test

import (
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/poll"
)

// Every poll joins the asset's history: its row among the last polls and
// its messages in the minute series. A poll from the stored position
// samples the lag the status reports; poll now, which reads from the
// beginning and leaves the position, does not.
func TestPollsRecordTheirHistory(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	e.produce(all, 0, 5)
	cfg := e.config(map[string]any{"read_from_beginning": true, "ingest.max_messages": 12, "ingest.batch_size": 4})

	sched := e.poll("prod", cfg, ingest.PollScheduled)
	if sched.MessagesRead == 0 || sched.Lag == 0 || sched.MessagesRead+int(sched.Lag) != 20 {
		t.Fatalf("scheduled poll = %+v, want part of the 20 messages read and the rest as lag", sched)
	}
	now, err := e.poller.Poll(t.Context(), poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollNow, Count: 20})
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.poller.History(t.Context(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Polls) != 2 || h.Asset != "prod" {
		t.Fatalf("history %+v, want the two polls", h)
	}
	if p := h.Polls[0]; p.Kind != ingest.PollNow || p.Status != ingest.PollSucceeded || p.MessagesRead != int64(now.MessagesRead) ||
		p.ContainersCreated != int64(now.ContainersCreated) || p.DurationMS <= 0 {
		t.Errorf("newest poll %+v, want poll now's %+v", p, now)
	}
	if p := h.Polls[1]; p.Kind != ingest.PollScheduled || p.MessagesRead != int64(sched.MessagesRead) ||
		p.ArtifactsCreated != int64(sched.ArtifactsCreated) {
		t.Errorf("older poll %+v, want the scheduled poll's %+v", p, sched)
	}
	var messages int64
	var lag *int64
	for _, m := range h.Minutes {
		messages += m.Messages
		if m.Lag != nil {
			lag = m.Lag
		}
	}
	if want := int64(sched.MessagesRead + now.MessagesRead); messages != want {
		t.Errorf("minutes add up to %d messages, want %d: %+v", messages, want, h.Minutes)
	}
	if lag == nil || *lag != sched.Lag {
		t.Errorf("last lag sampled %v, want the scheduled poll's %d (poll now's is not the asset's)", lag, sched.Lag)
	}

	if h, err := e.poller.History(t.Context(), "never"); err != nil || len(h.Polls) != 0 || len(h.Minutes) != 0 || h.Polls == nil || h.Minutes == nil {
		t.Errorf("history of an asset never polled: %+v, %v; want empty lists", h, err)
	}
}

// A continuous poll's periods that read messages join the last polls; its
// idle periods are its last poll and sample the lag, but stay out of the
// last polls, which they would otherwise fill within the hour.
func TestContinuousIdlePeriodsStayOutOfTheLastPolls(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t), poll.WithContinuous(300*time.Millisecond, 0))
	e.produce(all, 0, 5)
	cfg := e.continuous(map[string]any{"read_from_beginning": true})
	stop := runContinuous(t, e.poller, "live", cfg)

	history := func() *poll.History {
		h, err := e.poller.History(t.Context(), "live")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	read := func(h *poll.History) (n int64) {
		for _, p := range h.Polls {
			n += p.MessagesRead
		}
		return n
	}
	waitFor(t, "the continuous poll to read the 20 messages", func() bool { return read(history()) == 20 }, nil)
	newest := history().Polls[0].StartedAt
	// An idle period after them: the last poll, read nothing.
	waitFor(t, "an idle period", func() bool {
		st, err := e.db.Status(t.Context(), "live", topic)
		if err != nil {
			t.Fatal(err)
		}
		return st.LastPoll != nil && st.LastPoll.MessagesRead == 0 && st.LastPoll.StartedAt.After(newest)
	}, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	h := history()
	for _, p := range h.Polls {
		if p.Kind != ingest.PollContinuous || p.MessagesRead == 0 || p.Status != ingest.PollSucceeded {
			t.Errorf("poll %+v among the last polls: want only the continuous periods that read", p)
		}
	}
	if read(h) != 20 {
		t.Errorf("the last polls read %d messages, want 20", read(h))
	}
	var lag *int64
	for _, m := range h.Minutes {
		if m.Lag != nil {
			lag = m.Lag
		}
	}
	if lag == nil || *lag != 0 {
		t.Errorf("minutes %+v: the last lag sampled is not 0 (every message read)", h.Minutes)
	}
}
