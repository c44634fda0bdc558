package console

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/deliver"
	"github.com/soarkafka/soarkafka/poll"
)

// Assets is what the console reads of the assets service.
type Assets interface {
	List(ctx context.Context) ([]*assets.View, error)
	Resolve(ctx context.Context, name string) (assets.Config, *assets.Asset, error)
}

// IngestStatus is what the console reads of the poller: an asset's
// status, and its recent polls for the asset detail.
type IngestStatus interface {
	Status(ctx context.Context, asset string, cfg assets.Config) (*poll.Status, error)
	History(ctx context.Context, asset string) (*poll.History, error)
}

// DeliveryReports is what the console reads of the push delivery service.
type DeliveryReports interface {
	Report(ctx context.Context, asset string) (*deliver.Report, error)
}

const (
	// healthTimeout bounds one asset's health: the lag asks Kafka, and a
	// broker that does not answer must not hold the page.
	healthTimeout = 4 * time.Second
	// healthParallel is how many assets' health is asked at once.
	healthParallel = 8
)

// assetRow is one asset's line in the list.
type assetRow struct {
	Name        string
	Description string
	Topic       string
	Mode        string
	// State is "ok", "warn", "error" or "idle" (never polled), as text
	// beside its colour.
	State    string
	LastPoll *poll.PollView
	// LastPollAgo is how long ago the last poll started, for the eye; the
	// exact time is in LastPoll.
	LastPollAgo string
	Lag         string
	Problems    []string
	Delivery    string
	DeliveryBad bool
}

type assetsData struct {
	pageData
	Rows []assetRow
	// Loaded is true when the rows carry their health; the page first
	// shows the names and htmx fetches the health.
	Loaded bool
	Error  string
}

func (c *Console) listRows(ctx context.Context) ([]assetRow, error) {
	views, err := c.opts.Assets.List(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(views, func(i, j int) bool { return views[i].Name < views[j].Name })
	rows := make([]assetRow, len(views))
	for i, v := range views {
		topic, _ := v.Config["topic"].(string)
		rows[i] = assetRow{Name: v.Name, Description: v.Description, Topic: topic}
	}
	return rows, nil
}

func (c *Console) assetsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := &assetsData{pageData: pageData{Title: "Assets", Nav: "Assets"}}
	rows, err := c.listRows(r.Context())
	if err != nil {
		c.opts.Logger.Error("console: list assets", "err", err)
		d.Error = "The assets could not be read: " + soarkafka.ErrorMessage(err)
	}
	d.Rows = rows
	c.render(w, r, http.StatusOK, "assets", s, d)
}

// assetsHealth answers the list's rows with each asset's health, for htmx
// to put in place of the rows the page showed first.
func (c *Console) assetsHealth(w http.ResponseWriter, r *http.Request, s *session) {
	d := &assetsData{pageData: pageData{Title: "Assets", Nav: "Assets"}, Loaded: true}
	rows, err := c.listRows(r.Context())
	if err != nil {
		c.opts.Logger.Error("console: list assets", "err", err)
		d.Error = "The assets could not be read: " + soarkafka.ErrorMessage(err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, healthParallel)
	for i := range rows {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// The health of one asset fails alone: its row says why.
			defer func() {
				if v := recover(); v != nil {
					c.opts.Logger.Error("console: asset health panicked", "asset", rows[i].Name, "panic", fmt.Sprint(v))
					rows[i].State, rows[i].Problems = "error", append(rows[i].Problems, "health could not be read (see the server's log)")
				}
			}()
			ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
			defer cancel()
			c.health(ctx, &rows[i])
		}()
	}
	wg.Wait()
	d.Rows = rows
	c.render(w, r, http.StatusOK, "health", s, d)
}

// health fills one row from the ingest status and the delivery report.
func (c *Console) health(ctx context.Context, row *assetRow) {
	row.Lag, row.Delivery, row.State = "unknown", "unknown", "ok"
	cfg, _, err := c.opts.Assets.Resolve(ctx, row.Name)
	if err != nil {
		row.State = "error"
		row.Problems = append(row.Problems, "configuration: "+soarkafka.ErrorMessage(err))
		return
	}
	switch {
	case !cfg.Ingest.Enabled:
		row.Mode = "ingest disabled"
	case cfg.Continuous():
		row.Mode = "polled continuously"
	case cfg.Scheduled():
		row.Mode = "polled every " + cfg.Ingest.Interval
	default:
		row.Mode = "polled when the SOAR asks"
	}
	if c.opts.Ingest == nil {
		row.Problems = append(row.Problems, "ingest status not available: this server runs no polls")
	} else if st, err := c.opts.Ingest.Status(ctx, row.Name, cfg); err != nil {
		row.State = "error"
		row.Problems = append(row.Problems, "ingest status: "+soarkafka.ErrorMessage(err))
	} else {
		c.ingestHealth(row, st)
	}
	if c.opts.Delivery == nil {
		return
	}
	rep, err := c.opts.Delivery.Report(ctx, row.Name)
	if err != nil {
		row.Delivery, row.DeliveryBad = "unknown: "+soarkafka.ErrorMessage(err), true
		return
	}
	switch {
	case rep.Mode != "push":
		row.Delivery = "pull (the SOAR fetches)"
	default:
		row.Delivery = fmt.Sprintf("push, %s: %d waiting, %d delivered", rep.Worker, rep.Pending+rep.Sending, rep.Delivered)
		if rep.Dead > 0 {
			row.Delivery += fmt.Sprintf(", %d dead-lettered", rep.Dead)
			row.DeliveryBad = true
		}
		if rep.Worker == "paused" || rep.LastError != "" {
			row.DeliveryBad = true
		}
		if rep.Message != "" {
			row.Problems = append(row.Problems, "delivery: "+rep.Message)
		} else if rep.LastError != "" {
			row.Problems = append(row.Problems, "delivery: "+rep.LastError)
		}
	}
	if row.DeliveryBad && row.State == "ok" {
		row.State = "warn"
	}
}

func (c *Console) ingestHealth(row *assetRow, st *poll.Status) {
	if st.Lag != nil {
		row.Lag = strconv.FormatInt(*st.Lag, 10)
	}
	if st.KafkaError != "" {
		row.State = "warn"
		row.Problems = append(row.Problems, "Kafka: "+st.KafkaError)
	}
	if st.ConfigError != "" {
		row.State = "error"
		row.Problems = append(row.Problems, "configuration: "+st.ConfigError)
	}
	row.LastPoll = st.LastPoll
	switch {
	case st.LastPoll == nil:
		if row.State == "ok" {
			row.State = "idle"
		}
	case st.LastPoll.Error != "":
		row.State = "error"
		row.Problems = append(row.Problems, "last poll: "+st.LastPoll.Error)
	}
	if st.LastPoll != nil {
		row.LastPollAgo = ago(c.opts.Now().Sub(st.LastPoll.StartedAt))
	}
	if st.GapCount > 0 {
		row.Problems = append(row.Problems, fmt.Sprintf("%d gaps (%d messages skipped)", st.GapCount, st.GapMessages))
		if row.State == "ok" {
			row.State = "warn"
		}
	}
	if st.DeadLettered > 0 {
		row.Problems = append(row.Problems, fmt.Sprintf("%d messages dead-lettered", st.DeadLettered))
		if row.State == "ok" {
			row.State = "warn"
		}
	}
}

// ago says a duration the way a person reads a list: "12s ago", "3m ago".
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
}
