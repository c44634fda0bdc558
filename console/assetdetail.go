package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/actions"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/audit"
	"github.com/soarkafka/soarkafka/deliver"
	"github.com/soarkafka/soarkafka/poll"
)

// ActionRunner runs the asset actions the console offers: test
// connectivity, poll now and post data, the same runs as the API's
// actions.
type ActionRunner interface {
	TestConnectivity(ctx context.Context, cfg assets.Config) *actions.Result
	OnPoll(ctx context.Context, target actions.Target, p *actions.OnPollParams) (*actions.Result, error)
	PostData(ctx context.Context, target actions.Target, p *actions.PostDataParams) (*actions.Result, error)
}

type assetDetailData struct {
	pageData
	Name        string
	Description string
	Topic       string
	Enabled     bool
	Status      *poll.Status
	// History is the asset's last polls and per-minute series (see
	// assethistory.go); nil when it could not be read.
	History  *poll.History
	Delivery *deliver.Report
	// Problems are what could not be read, each with its reason.
	Problems []string
}

func (c *Console) assetDetailPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.assetDetail(r, r.PathValue("name"))
	if err != nil {
		c.assetError(w, r, s, r.PathValue("name"), err)
		return
	}
	c.render(w, r, http.StatusOK, "assetdetail", s, d)
}

// assetStatus answers the detail's status part alone: htmx fetches it
// again after poll now.
func (c *Console) assetStatus(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.assetDetail(r, r.PathValue("name"))
	if err != nil {
		d = &assetDetailData{Name: r.PathValue("name"), Problems: []string{"the asset could not be read: " + soarkafka.ErrorMessage(err)}}
	}
	c.renderFragment(w, r, "status", d)
}

func (c *Console) assetDetail(r *http.Request, name string) (*assetDetailData, error) {
	cfg, _, err := c.opts.Assets.Resolve(r.Context(), name)
	if err != nil {
		return nil, err
	}
	d := &assetDetailData{pageData: pageData{Title: "Asset " + name, Nav: "Assets"}, Name: name, Topic: cfg.Topic, Enabled: cfg.Ingest.Enabled}
	if v, err := c.opts.AssetEditor.Get(r.Context(), name); err == nil {
		d.Description = v.Description
	}
	// The lag asks Kafka: a broker that does not answer must not hold
	// the page.
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if c.opts.Ingest == nil {
		d.Problems = append(d.Problems, "ingest status not available: this server runs no polls")
	} else {
		if d.Status, err = c.opts.Ingest.Status(ctx, name, cfg); err != nil {
			d.Problems = append(d.Problems, "ingest status: "+soarkafka.ErrorMessage(err))
		}
		if d.History, err = c.opts.Ingest.History(ctx, name); err != nil {
			d.Problems = append(d.Problems, "poll history: "+soarkafka.ErrorMessage(err))
		}
	}
	if c.opts.Delivery != nil {
		if d.Delivery, err = c.opts.Delivery.Report(ctx, name); err != nil {
			d.Problems = append(d.Problems, "delivery: "+soarkafka.ErrorMessage(err))
		}
	}
	return d, nil
}

// connectivityData is the fragment htmx puts under the Test connectivity
// button.
type connectivityData struct {
	Result *actions.Result
	Steps  []actions.ConnectivityStep
	Error  string
}

func (c *Console) testConnectivity(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	d := &connectivityData{}
	switch cfg, _, err := c.opts.Assets.Resolve(r.Context(), name); {
	case err != nil:
		d.Error = "The asset's configuration could not be read: " + soarkafka.ErrorMessage(err)
	case c.opts.Actions == nil:
		d.Error = "Test connectivity is not available on this server."
	default:
		d.Result = c.opts.Actions.TestConnectivity(r.Context(), cfg)
		for _, st := range d.Result.Data {
			if step, ok := st.(actions.ConnectivityStep); ok {
				d.Steps = append(d.Steps, step)
			}
		}
	}
	c.renderFragment(w, r, "connectivity", d)
}

type pollNowData struct {
	Result  *actions.Result
	Summary *actions.PollSummary
	Error   string
}

// pollNow runs on poll with poll_now, as the SOAR's "poll now" does, and
// answers its outcome for htmx to show.
func (c *Console) pollNow(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	d := &pollNowData{}
	switch cfg, _, err := c.opts.Assets.Resolve(r.Context(), name); {
	case err != nil:
		d.Error = "The asset's configuration could not be read: " + soarkafka.ErrorMessage(err)
	case c.opts.Actions == nil:
		d.Error = "Poll now is not available on this server."
	default:
		res, err := c.opts.Actions.OnPoll(r.Context(), actions.Target{Asset: name, Config: cfg}, &actions.OnPollParams{PollNow: true})
		if err != nil {
			c.opts.Logger.Error("console: poll now", "asset", name, "err", err)
			d.Error = "Poll now failed: " + soarkafka.ErrorMessage(err)
			break
		}
		d.Result = res
		d.Summary, _ = res.Summary.(*actions.PollSummary)
	}
	// The page's status part listens for this and fetches itself again,
	// showing the poll.
	w.Header().Set("HX-Trigger", "asset-polled")
	c.renderFragment(w, r, "pollnow", d)
}

// setEnabled flips ingest.enabled: an update of the asset through the
// assets service, audited as enable or disable.
func (c *Console) setEnabled(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	enable := r.PostFormValue("enabled") == "true"
	old, err := c.opts.AssetEditor.Get(r.Context(), name)
	if err != nil {
		c.assetError(w, r, s, name, err)
		return
	}
	// The stored configuration as it is, ingest.enabled changed; secrets
	// left out keep their stored values.
	doc := copyMap(old.Config)
	setPath(doc, "ingest.enabled", enable)
	in := assets.Input{Name: name, Description: old.Description, Config: doc}
	v, err := c.opts.AssetEditor.Update(r.Context(), name, in)
	if err != nil {
		c.opts.Logger.Error("console: enable or disable asset", "asset", name, "err", err)
		c.render(w, r, http.StatusUnprocessableEntity, "notfound", s, pageData{Title: fmt.Sprintf("Asset %s could not be changed: %s", name, soarkafka.ErrorMessage(err))})
		return
	}
	action, changes := audit.AssetChanges(old, v, map[string]any{"ingest": map[string]any{"enabled": enable}})
	c.recordAsset(r, s, name, action, v.Version, changes)
	http.Redirect(w, r, "/assets/"+url.PathEscape(name), http.StatusSeeOther)
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = copyMap(sub)
		}
		out[k] = v
	}
	return out
}

// renderFragment executes one of the asset detail's fragments, for htmx.
func (c *Console) renderFragment(w http.ResponseWriter, r *http.Request, name string, data any) {
	var b strings.Builder
	if err := c.pages["assetdetail"].ExecuteTemplate(&b, name, data); err != nil {
		c.opts.Logger.Error("console: render fragment", "fragment", name, "path", r.URL.Path, "err", err)
		http.Error(w, "The console could not show this; the server's log says why.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}
