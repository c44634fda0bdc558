package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/audit"
)

// AssetEditor is what the console's asset forms write through: the same
// assets service the API uses, so a form gets the API's validation and
// every bad field at once.
type AssetEditor interface {
	Get(ctx context.Context, name string) (*assets.View, error)
	Create(ctx context.Context, in assets.Input) (*assets.View, error)
	Update(ctx context.Context, name string, in assets.Input) (*assets.View, error)
	Delete(ctx context.Context, name string) error
}

// AuditRecorder records the console's changes, as the API records its own.
type AuditRecorder interface {
	Event(req *http.Request, actor, kind, name, action string, version int64, changes map[string]any) audit.Event
	Record(ctx context.Context, e audit.Event) error
}

// formGroup is one fieldset of the asset form.
type formGroup struct {
	Title  string
	Fields []formField
}

// formField is one input of the asset form, from the field registry.
type formField struct {
	Name        string
	ID          string
	Kind        string // "text", "number", "checkbox", "select", "secret"
	Value       string
	Checked     bool
	Options     []string
	Default     string
	Required    bool
	Description string
	// IsSet is a secret's "set" badge; its value never reaches the page.
	IsSet bool
	Error string
}

// fieldGroup names the registry's group of a field: its dotted prefix, or,
// for the top-level fields the Splunk SOAR app defined, what they configure.
func fieldGroup(name string) string {
	if i := strings.IndexByte(name, '.'); i > 0 {
		switch name[:i] {
		case "kerberos":
			return "Kerberos"
		case "aws_iam":
			return "AWS IAM"
		case "producer":
			return "Producer"
		case "ingest":
			return "Ingest"
		case "delivery":
			return "Delivery"
		}
		return name[:i]
	}
	switch name {
	case "use_ssl", "cert_file", "key_file", "ca_cert", "cert_pem", "key_pem", "ca_pem", "key_password", "tls_server_name", "insecure_skip_verify":
		return "TLS"
	case "security_protocol", "sasl_mechanism", "username", "password":
		return "SASL"
	case "use_kerberos":
		return "Kerberos"
	}
	return "Connection"
}

// lookupPath reads a dotted field from a configuration document.
func lookupPath(doc map[string]any, name string) (any, bool) {
	parts := strings.Split(name, ".")
	var cur any = doc
	for _, p := range parts {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func setPath(doc map[string]any, name string, v any) {
	parts := strings.Split(name, ".")
	for _, p := range parts[:len(parts)-1] {
		m, ok := doc[p].(map[string]any)
		if !ok {
			m = map[string]any{}
			doc[p] = m
		}
		doc = m
	}
	doc[parts[len(parts)-1]] = v
}

// show writes a value as its input shows it. Stored numbers may come back
// as float64 (JSON): written plainly, never in exponent form, so that a
// form saved again sends the same whole number.
func show(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// buildGroups lays out the registry's fields with the values of cfg (the
// stored asset's, or what the form sent), the secrets set and the errors.
func buildGroups(cfg map[string]any, secrets map[string]bool, errs map[string]string) []formGroup {
	var groups []formGroup
	index := map[string]int{}
	for _, f := range assets.Fields {
		ff := formField{Name: f.Name, ID: "f-" + strings.ReplaceAll(f.Name, ".", "-"), Required: f.Required,
			Description: f.Description, Default: show(f.Default), Error: errs[f.Name]}
		v, ok := lookupPath(cfg, f.Name)
		if !ok {
			v = f.Default
		}
		switch {
		case f.Secret:
			ff.Kind, ff.IsSet, ff.Default = "secret", secrets[f.Name], ""
		case f.Type == assets.TypeBoolean:
			ff.Kind = "checkbox"
			ff.Checked, _ = v.(bool)
			if s, isStr := v.(string); isStr {
				ff.Checked = s == "true"
			}
		case len(f.Enum) > 0:
			ff.Kind, ff.Value = "select", show(v)
			ff.Options = append([]string(nil), f.Enum...)
			// An optional enum with no default may be left unset.
			if !f.Required && show(f.Default) == "" && !slices.Contains(f.Enum, "") {
				ff.Options = append([]string{""}, ff.Options...)
			}
		case f.Type == assets.TypeInteger:
			ff.Kind, ff.Value = "number", show(v)
		default:
			ff.Kind, ff.Value = "text", show(v)
		}
		g := fieldGroup(f.Name)
		i, seen := index[g]
		if !seen {
			i = len(groups)
			index[g] = i
			groups = append(groups, formGroup{Title: g})
		}
		groups[i].Fields = append(groups[i].Fields, ff)
	}
	slices.SortStableFunc(groups, func(a, b formGroup) int {
		return groupRank(a.Title) - groupRank(b.Title)
	})
	return groups
}

// groupOrder is the order of the form's groups: from what reaches Kafka to
// what happens with the messages.
var groupOrder = []string{"Connection", "TLS", "SASL", "Kerberos", "AWS IAM", "Producer", "Ingest", "Delivery"}

func groupRank(title string) int {
	if i := slices.Index(groupOrder, title); i >= 0 {
		return i
	}
	return len(groupOrder)
}

// formConfig turns the posted form into the configuration document the
// assets service decodes. A value the service would refuse (a word in a
// number) is passed as written, so that the service reports it beside its
// field as the API would. On create, fields left at their default are not
// sent (the audit then names only what a person chose); on update, every
// field is, since an update replaces the configuration. A secret is sent
// only when replaced (its new value) or cleared (null).
func formConfig(form url.Values, create bool) map[string]any {
	doc := map[string]any{}
	for _, f := range assets.Fields {
		if f.Secret {
			if form.Get("clear."+f.Name) == "on" {
				setPath(doc, f.Name, nil)
			} else if v := form.Get(f.Name); v != "" {
				setPath(doc, f.Name, v)
			}
			continue
		}
		var v any
		raw := strings.TrimSpace(form.Get(f.Name))
		switch f.Type {
		case assets.TypeBoolean:
			v = form.Get(f.Name) == "on"
		case assets.TypeInteger:
			if raw == "" {
				continue
			}
			if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
				v = n
			} else {
				v = raw
			}
		default:
			if raw == "" && !f.Required {
				continue // the default, "" for every optional string
			}
			v = raw
		}
		if create && f.Default != nil && show(v) == show(f.Default) {
			continue
		}
		setPath(doc, f.Name, v)
	}
	return doc
}

type assetFormData struct {
	pageData
	Create      bool
	Name        string
	Description string
	Version     int64
	Groups      []formGroup
	NameError   string
	// Errors are the problems not tied to an input of the form.
	Errors []string
	// Invalid is true when a field has an error beside its input.
	Invalid bool
	Saved   bool
}

// actor is the audit trail's name for a session: a short hash of its id,
// which names the session without revealing the cookie (kept with the
// session, see sessions.create).
func (s *session) actor() string { return s.actorLabel }

// record keeps a change the session made in the audit trail. A failure
// is logged by the recorder; the change is made.
func (c *Console) record(r *http.Request, s *session, kind, name, action string, version int64, changes map[string]any) {
	if c.opts.Audit == nil {
		return
	}
	_ = c.opts.Audit.Record(r.Context(), c.opts.Audit.Event(r, s.actor(), kind, name, action, version, changes))
}

func (c *Console) recordAsset(r *http.Request, s *session, name, action string, version int64, changes map[string]any) {
	c.record(r, s, audit.KindAsset, name, action, version, changes)
}

func (c *Console) newAssetPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := &assetFormData{pageData: pageData{Title: "New asset", Nav: "Assets"}, Create: true,
		Groups: buildGroups(nil, nil, nil)}
	c.render(w, r, http.StatusOK, "assetform", s, d)
}

func (c *Console) editAssetPage(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	v, err := c.opts.AssetEditor.Get(r.Context(), name)
	if err != nil {
		c.assetError(w, r, s, name, err)
		return
	}
	d := &assetFormData{pageData: pageData{Title: "Edit " + name, Nav: "Assets"}, Name: v.Name, Description: v.Description,
		Version: v.Version, Groups: buildGroups(v.Config, v.Secrets, nil), Saved: r.URL.Query().Get("saved") == "1"}
	c.render(w, r, http.StatusOK, "assetform", s, d)
}

// assetError answers a page for an asset that could not be read.
func (c *Console) assetError(w http.ResponseWriter, r *http.Request, s *session, name string, err error) {
	status := http.StatusInternalServerError
	if soarkafka.ErrorCode(err) == soarkafka.ENOTFOUND {
		status = http.StatusNotFound
	} else {
		c.opts.Logger.Error("console: read asset", "asset", name, "err", err)
	}
	c.render(w, r, status, "notfound", s, pageData{Title: "Asset " + name + ": " + soarkafka.ErrorMessage(err)})
}

// saveAsset creates (no name in the path) or updates an asset from the
// posted form: on success to the edit page, on failure the form again
// with every bad field beside its input.
func (c *Console) saveAsset(w http.ResponseWriter, r *http.Request, s *session) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "The form could not be read: "+err.Error(), http.StatusBadRequest)
		return
	}
	pathName := r.PathValue("name")
	create := pathName == ""
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if !create {
		name = pathName
	}
	in := assets.Input{Name: name, Description: r.PostForm.Get("description"), Config: formConfig(r.PostForm, create)}
	var (
		v   *assets.View
		old *assets.View
		err error
	)
	if create {
		v, err = c.opts.AssetEditor.Create(r.Context(), in)
	} else {
		old, _ = c.opts.AssetEditor.Get(r.Context(), name)
		v, err = c.opts.AssetEditor.Update(r.Context(), name, in)
	}
	if err != nil {
		c.assetFormErrors(w, r, s, create, in, old, err)
		return
	}
	action, changes := audit.AssetChanges(old, v, in.Config)
	if !create && old == nil {
		action = audit.ActionUpdate
	}
	c.recordAsset(r, s, v.Name, action, v.Version, changes)
	http.Redirect(w, r, "/assets/"+url.PathEscape(v.Name)+"/edit?saved=1", http.StatusSeeOther)
}

func (c *Console) assetFormErrors(w http.ResponseWriter, r *http.Request, s *session, create bool, in assets.Input, old *assets.View, err error) {
	var se *soarkafka.Error
	if !errors.As(err, &se) || (se.Code != soarkafka.EINVALID && se.Code != soarkafka.ECONFLICT && se.Code != soarkafka.ENOTFOUND) {
		c.opts.Logger.Error("console: save asset", "asset", in.Name, "err", err)
	}
	errs := map[string]string{}
	d := &assetFormData{pageData: pageData{Title: "New asset", Nav: "Assets"}, Create: create, Name: in.Name, Description: in.Description}
	if !create {
		d.Title = "Edit " + in.Name
	}
	if se != nil && len(se.Fields) > 0 {
		for _, f := range se.Fields {
			switch _, known := assets.FieldByName(f.Field); {
			case f.Field == "name":
				d.NameError = f.Message
			case known:
				if errs[f.Field] != "" {
					errs[f.Field] += "; "
				}
				errs[f.Field] += f.Message
				d.Invalid = true
			default:
				d.Errors = append(d.Errors, f.Field+": "+f.Message)
			}
		}
	} else {
		d.Errors = append(d.Errors, soarkafka.ErrorMessage(err))
	}
	var secrets map[string]bool
	if old != nil {
		secrets, d.Version = old.Secrets, old.Version
	}
	d.Groups = buildGroups(in.Config, secrets, errs)
	c.render(w, r, http.StatusUnprocessableEntity, "assetform", s, d)
}

func (c *Console) deleteAsset(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	if err := c.opts.AssetEditor.Delete(r.Context(), name); err != nil {
		c.assetError(w, r, s, name, err)
		return
	}
	c.recordAsset(r, s, name, audit.ActionDelete, 0, nil)
	http.Redirect(w, r, "/assets", http.StatusSeeOther)
}
