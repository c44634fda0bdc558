package console

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/audit"
)

// AuditTrail reads the trail back for the audit page; the store answers
// GET /v1/audit the same way.
type AuditTrail interface {
	ListAudit(ctx context.Context, f audit.Filter) ([]audit.Event, int, error)
}

// auditPageSize is how many events one page of the trail shows.
const auditPageSize = 50

// auditTimeLayout is the datetime-local inputs' format; the page reads and
// shows times in UTC, as the trail keeps them.
const auditTimeLayout = "2006-01-02T15:04"

type auditChange struct{ Field, Value string }

type auditRow struct {
	audit.Event
	ChangeList []auditChange
}

type auditData struct {
	pageData
	Error string
	// The filter as given, to fill the form again.
	Kind, Name, Since, Until string
	Kinds                    []string
	Rows                     []auditRow
	Total, Page, Pages       int
	First, Last              int
	PrevURL, NextURL         string
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := &auditData{
		pageData: pageData{Title: "Audit", Nav: "Audit"},
		Kind:     q.Get("kind"), Name: strings.TrimSpace(q.Get("name")),
		Since: q.Get("since"), Until: q.Get("until"),
		Kinds: []string{audit.KindAsset, audit.KindParser, audit.KindDelivery},
	}
	f, problems := auditFilter(d)
	page := 0
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			problems = append(problems, fmt.Sprintf("Page %q: give a page number from 0.", v))
		} else {
			page = n
		}
	}
	f.Page = page
	switch {
	case len(problems) > 0:
		d.Error = strings.Join(problems, " ")
	case c.opts.AuditTrail == nil:
		d.Error = "The audit trail is not available on this server."
	default:
		list, total, err := c.opts.AuditTrail.ListAudit(r.Context(), f)
		if err != nil {
			c.opts.Logger.Error("console: list audit events", "err", err)
			d.Error = "The audit trail could not be read: " + soarkafka.ErrorMessage(err)
			break
		}
		d.Total, d.Page = total, page
		d.Pages = (total + auditPageSize - 1) / auditPageSize
		for _, e := range list {
			d.Rows = append(d.Rows, auditRow{Event: e, ChangeList: changeList(e.Changes)})
		}
		if len(list) > 0 {
			d.First, d.Last = page*auditPageSize+1, page*auditPageSize+len(list)
		}
		if page > 0 {
			d.PrevURL = auditURL(q, page-1)
		}
		if (page+1)*auditPageSize < total {
			d.NextURL = auditURL(q, page+1)
		}
	}
	c.render(w, r, http.StatusOK, "audit", s, d)
}

// auditFilter reads the form's filter; each problem names the field and
// what to give instead.
func auditFilter(d *auditData) (audit.Filter, []string) {
	var problems []string
	f := audit.Filter{Kind: d.Kind, Name: d.Name, PageSize: auditPageSize}
	if f.Kind != "" && !slices.Contains(d.Kinds, f.Kind) {
		problems = append(problems, fmt.Sprintf("Object type %q: choose asset, parser or delivery.", f.Kind))
		d.Kind = ""
	}
	parse := func(label, v string) time.Time {
		if v == "" {
			return time.Time{}
		}
		t, err := time.ParseInLocation(auditTimeLayout, v, time.UTC)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %q: give a date and time as YYYY-MM-DDTHH:MM (UTC).", label, v))
		}
		return t
	}
	f.Since, f.Until = parse("From", d.Since), parse("Until", d.Until)
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		problems = append(problems, "Until must be after From.")
	}
	return f, problems
}

// changeList shows an event's changes one field a line, sorted: values
// as JSON, so a secret reads exactly as the API shows it ("changed", bare)
// and no value can be mistaken for it.
func changeList(changes map[string]any) []auditChange {
	out := make([]auditChange, 0, len(changes))
	for _, k := range slices.Sorted(maps.Keys(changes)) {
		v := changes[k]
		var text string
		if m, ok := v.(map[string]any); ok && oldNew(m) {
			// An edit reads as old → new; a value set or removed as its
			// one side.
			old, hadOld := m["old"]
			nw, hasNew := m["new"]
			switch {
			case hadOld && hasNew:
				text = jsonText(old) + " → " + jsonText(nw)
			case hasNew:
				text = "set to " + jsonText(nw)
			default:
				text = "removed (was " + jsonText(old) + ")"
			}
		} else if s, ok := v.(string); ok {
			text = s
		} else {
			text = jsonText(v)
		}
		out = append(out, auditChange{Field: k, Value: text})
	}
	return out
}

// oldNew says whether m is a change's {"old", "new"} pair.
func oldNew(m map[string]any) bool {
	if len(m) == 0 || len(m) > 2 {
		return false
	}
	for k := range m {
		if k != "old" && k != "new" {
			return false
		}
	}
	return true
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// auditURL is the audit page's address with the same filter on page.
func auditURL(q url.Values, page int) string {
	v := url.Values{}
	for _, k := range []string{"kind", "name", "since", "until"} {
		if q.Get(k) != "" {
			v.Set(k, q.Get(k))
		}
	}
	if page > 0 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return "/audit"
	}
	return "/audit?" + v.Encode()
}
