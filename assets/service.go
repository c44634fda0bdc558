package assets

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/soarkafka/soarkafka"
)

// Service is what the API and the actions use: it validates documents,
// seals secrets before they reach the repository and opens them when a
// configuration is resolved for a connection. Nothing else sees sealed
// values or handles plaintext secrets at rest.
type Service struct {
	repo    Repository
	sealer  *Sealer
	parsers Parsers // nil: message_parser is not checked

	// resolved keeps each asset's last resolved configuration, by name,
	// with the id and version it was resolved from. Resolve reads the row
	// every time (so an update by any replica is seen at once) but opens
	// the secrets and decodes the document again only when the row is a
	// new one: decoding is a large share of a one-message post data's
	// handling time.
	mu       sync.Mutex
	resolved map[string]resolvedConfig

	logger      *slog.Logger // nil: nothing logged
	subMu       sync.Mutex
	subscribers []Subscriber // see Subscribe
}

type resolvedConfig struct {
	id, version int64
	cfg         Config
}

// ServiceOption configures a Service.
type ServiceOption func(*Service)

// Parsers is what the service asks of the parsers: whether one exists.
// *parsers.Service is one; the interface is the service's own so that the
// asset types stay free of the parser engine that parsers brings.
type Parsers interface {
	// Exists returns nil for a parser of that name, bundled or stored,
	// and an ENOTFOUND *soarkafka.Error for an unknown name.
	Exists(ctx context.Context, name string) error
}

// WithParsers has every save check that message_parser names one of ps's
// parsers. Without it, any name is stored.
func WithParsers(ps Parsers) ServiceOption {
	return func(s *Service) { s.parsers = ps }
}

// NewService returns a Service over repo that seals with sealer.
func NewService(repo Repository, sealer *Sealer, opts ...ServiceOption) *Service {
	s := &Service{repo: repo, sealer: sealer, resolved: map[string]resolvedConfig{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// checkParser reports a message_parser that names no parser.
func (s *Service) checkParser(ctx context.Context, cfg Config) error {
	if s.parsers == nil || cfg.MessageParser == "" {
		return nil
	}
	err := s.parsers.Exists(ctx, cfg.MessageParser)
	if soarkafka.ErrorCode(err) == soarkafka.ENOTFOUND {
		return &soarkafka.Error{Code: soarkafka.EINVALID, Message: "invalid asset", Fields: []soarkafka.FieldError{{Field: "message_parser",
			Message: fmt.Sprintf("no parser named %q; GET /v1/parsers lists them (empty means the bundled default)", cfg.MessageParser)}}}
	}
	return err
}

// Input is an asset document as a client sends it.
type Input struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Config      map[string]any `json:"config"`
}

// View is an asset as the API shows it: secrets are never included, only
// whether each is set.
type View struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Config      map[string]any  `json:"config"`
	Secrets     map[string]bool `json:"secrets"`
	Version     int64           `json:"version"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// Create validates and stores a new asset.
func (s *Service) Create(ctx context.Context, in Input) (*View, error) {
	var errs fieldErrors
	if msg := soarkafka.NameProblem(in.Name); msg != "" {
		errs.add("name", msg)
	}
	cfg, err := Decode(in.Config, DecodeOptions{})
	if err := mergeErrors(errs, err); err != nil {
		return nil, err
	}
	if err := s.checkParser(ctx, cfg); err != nil {
		return nil, err
	}
	sealed, err := s.seal(cfg)
	if err != nil {
		return nil, err
	}
	a := &Asset{Name: in.Name, Description: strings.TrimSpace(in.Description), Config: sealed}
	if err := s.repo.CreateAsset(ctx, a); err != nil {
		return nil, err
	}
	s.announce(ctx, Change{Name: a.Name})
	return s.view(a), nil
}

// Update replaces the description and configuration of the named asset.
// A secret field left out of the document keeps its stored value (the API
// never shows it, so a client cannot send it back); a secret set to null is
// cleared.
func (s *Service) Update(ctx context.Context, name string, in Input) (*View, error) {
	if in.Name != "" && in.Name != name {
		return nil, &soarkafka.Error{Code: soarkafka.EINVALID, Message: "invalid asset", Fields: []soarkafka.FieldError{
			{Field: "name", Message: fmt.Sprintf("%q differs from %q in the URL; assets cannot be renamed", in.Name, name)}}}
	}
	cur, err := s.repo.Asset(ctx, name)
	if err != nil {
		return nil, err
	}
	doc := copyDoc(in.Config)
	for _, f := range Fields {
		if !f.Secret {
			continue
		}
		if _, given := lookup(doc, f.Name); given {
			continue
		}
		if v, ok := lookup(cur.Config, f.Name); ok && v != "" {
			plain, err := s.sealer.Open(f.Name, fmt.Sprint(v))
			if err != nil {
				return nil, fmt.Errorf("asset %q: %w", name, err)
			}
			set(doc, f.Name, plain)
		}
	}
	cfg, err := Decode(doc, DecodeOptions{})
	if err != nil {
		return nil, err
	}
	if err := s.checkParser(ctx, cfg); err != nil {
		return nil, err
	}
	sealed, err := s.seal(cfg)
	if err != nil {
		return nil, err
	}
	a := &Asset{Name: name, Description: strings.TrimSpace(in.Description), Config: sealed}
	if err := s.repo.UpdateAsset(ctx, a); err != nil {
		return nil, err
	}
	s.announce(ctx, Change{Name: name})
	return s.view(a), nil
}

// Get returns the named asset's view.
func (s *Service) Get(ctx context.Context, name string) (*View, error) {
	a, err := s.repo.Asset(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.view(a), nil
}

// List returns every asset's view, ordered by name.
func (s *Service) List(ctx context.Context) ([]*View, error) {
	as, err := s.repo.Assets(ctx)
	if err != nil {
		return nil, err
	}
	views := make([]*View, 0, len(as))
	for _, a := range as {
		views = append(views, s.view(a))
	}
	return views, nil
}

// Delete removes the named asset.
func (s *Service) Delete(ctx context.Context, name string) error {
	err := s.repo.DeleteAsset(ctx, name)
	s.forget(name)
	if err != nil {
		return err
	}
	s.announce(ctx, Change{Name: name, Deleted: true})
	return nil
}

// forget drops the resolved configuration of an asset that is gone: its
// opened secrets are not kept past it.
func (s *Service) forget(name string) {
	s.mu.Lock()
	delete(s.resolved, name)
	s.mu.Unlock()
}

// Resolve returns the named asset's configuration with secrets opened, for
// a connection. Stored documents were validated on save; decoding again
// applies defaults of fields added since.
func (s *Service) Resolve(ctx context.Context, name string) (Config, *Asset, error) {
	a, err := s.repo.Asset(ctx, name)
	if err != nil {
		if soarkafka.ErrorCode(err) == soarkafka.ENOTFOUND {
			s.forget(name) // deleted, maybe by another replica
		}
		return Config{}, nil, err
	}
	s.mu.Lock()
	r, ok := s.resolved[name]
	s.mu.Unlock()
	if ok && r.id == a.ID && r.version == a.Version {
		return r.cfg, a, nil // Config is a value: the caller gets a copy
	}
	doc := copyDoc(a.Config)
	for _, f := range Fields {
		if !f.Secret {
			continue
		}
		if v, ok := lookup(doc, f.Name); ok && IsSealed(v) {
			plain, err := s.sealer.Open(f.Name, v.(string))
			if err != nil {
				return Config{}, nil, fmt.Errorf("asset %q: %w", name, err)
			}
			set(doc, f.Name, plain)
		}
	}
	cfg, err := Decode(doc, DecodeOptions{IgnoreUnknown: true, Stored: true})
	if err != nil {
		return Config{}, nil, fmt.Errorf("asset %q: stored configuration no longer valid: %w", name, err)
	}
	s.mu.Lock()
	s.resolved[name] = resolvedConfig{id: a.ID, version: a.Version, cfg: cfg}
	s.mu.Unlock()
	return cfg, a, nil
}

// seal returns the configuration as a document to store: secrets sealed,
// empty secrets left out.
func (s *Service) seal(cfg Config) (map[string]any, error) {
	doc := cfg.Document()
	for _, f := range Fields {
		if !f.Secret {
			continue
		}
		v, ok := lookup(doc, f.Name)
		if !ok {
			continue
		}
		plain, _ := v.(string)
		if plain == "" {
			del(doc, f.Name)
			continue
		}
		sealed, err := s.sealer.Seal(f.Name, plain)
		if err != nil {
			return nil, err
		}
		set(doc, f.Name, sealed)
	}
	return doc, nil
}

func (s *Service) view(a *Asset) *View {
	doc := copyDoc(a.Config)
	secrets := map[string]bool{}
	for _, f := range Fields {
		if !f.Secret {
			continue
		}
		v, ok := lookup(doc, f.Name)
		secrets[f.Name] = ok && v != nil && v != ""
		del(doc, f.Name)
	}
	return &View{Name: a.Name, Description: a.Description, Config: doc, Secrets: secrets,
		Version: a.Version, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

func mergeErrors(errs fieldErrors, err error) error {
	if err == nil && len(errs) == 0 {
		return nil
	}
	if err != nil {
		e, ok := err.(*soarkafka.Error)
		if !ok {
			return err
		}
		errs = append(errs, e.Fields...)
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field == "name" && errs[j].Field != "name" })
	return &soarkafka.Error{Code: soarkafka.EINVALID, Message: "invalid asset", Fields: errs}
}

// copyDoc deep-copies the objects of a document (values are immutable).
func copyDoc(doc map[string]any) map[string]any {
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		if m, ok := v.(map[string]any); ok {
			v = copyDoc(m)
		}
		out[k] = v
	}
	return out
}

func lookup(doc map[string]any, path string) (any, bool) {
	parts := strings.Split(path, ".")
	m := doc
	for _, p := range parts[:len(parts)-1] {
		child, ok := m[p].(map[string]any)
		if !ok {
			return nil, false
		}
		m = child
	}
	v, ok := m[parts[len(parts)-1]]
	return v, ok
}

func set(doc map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	m := doc
	for _, p := range parts[:len(parts)-1] {
		child, ok := m[p].(map[string]any)
		if !ok {
			child = map[string]any{}
			m[p] = child
		}
		m = child
	}
	m[parts[len(parts)-1]] = v
}

func del(doc map[string]any, path string) {
	parts := strings.Split(path, ".")
	m := doc
	for _, p := range parts[:len(parts)-1] {
		child, ok := m[p].(map[string]any)
		if !ok {
			return
		}
		m = child
	}
	delete(m, parts[len(parts)-1])
}
