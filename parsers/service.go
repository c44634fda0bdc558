package parsers

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/parsers/bundled"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/soar"
)

// Service manages parsers for the API: user parsers stored with their
// versions, validated on every save (static checks, then a run on a sample
// batch in a worker), and the bundled ones beside them, read-only.
type Service struct {
	repo   Repository
	engine *Engine
	now    func() time.Time
	live   liveSample
}

// AssetResolver finds an asset's configuration by name (assets.Service).
type AssetResolver interface {
	Resolve(ctx context.Context, name string) (assets.Config, *assets.Asset, error)
}

// TopicSampler reads up to count messages of an asset's topic from
// "latest" or "earliest", committing nothing (kafka.Access).
type TopicSampler interface {
	Sample(ctx context.Context, cfg assets.Config, logger *slog.Logger, from string, count int) ([]soar.Message, error)
}

type liveSample struct {
	assets  AssetResolver
	sampler TopicSampler
	logger  *slog.Logger
}

// UseLiveSample lets Test sample an asset's topic: assets resolves the
// asset, sampler reads its topic, logging to logger. It is called once
// while wiring, before Test runs: the assets service is built after this
// one (it checks parser names with Exists), so it cannot be an argument of
// NewService. Without it a test with an asset is refused.
func (s *Service) UseLiveSample(assets AssetResolver, sampler TopicSampler, logger *slog.Logger) {
	s.live = liveSample{assets: assets, sampler: sampler, logger: logger}
}

// NewService returns a Service over repo that runs parsers with engine.
func NewService(repo Repository, engine *Engine) *Service {
	return &Service{repo: repo, engine: engine, now: time.Now}
}

// Input is a parser as a client sends it.
type Input struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Source      string `json:"source"`
}

// View is a parser as the API shows it.
type View struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Bundled     bool      `json:"bundled"`
	Version     int64     `json:"version"` // 0 for bundled parsers
	Source      string    `json:"source,omitempty"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

// reservedNames cannot name a user parser: "test" is the API's playground
// route (/v1/parsers/test), "new" and "playground" the console's
// (/parsers/new, /parsers/playground).
var reservedNames = map[string]bool{"test": true, "new": true, "playground": true}

func (s *Service) validate(ctx context.Context, in Input) error {
	var fields []soarkafka.FieldError
	if msg := soarkafka.NameProblem(in.Name); msg != "" {
		fields = append(fields, soarkafka.FieldError{Field: "name", Message: msg})
	} else if _, ok := bundled.Get(in.Name); ok || reservedNames[in.Name] {
		return soarkafka.Errorf(soarkafka.ECONFLICT, "%q is the name of a bundled parser or a reserved word; choose another name", in.Name)
	}
	if strings.TrimSpace(in.Source) == "" {
		fields = append(fields, soarkafka.FieldError{Field: "source", Message: "required: the parser's Go source"})
	}
	if len(fields) > 0 {
		return &soarkafka.Error{Code: soarkafka.EINVALID, Message: "invalid parser", Fields: fields}
	}
	file := in.Name + ".go"
	if err := sandbox.Check(file, in.Source); err != nil {
		return invalid(in.Name, err)
	}
	// A run on the sample batch catches what static checks cannot: compile
	// errors, a panic on ordinary input, a result that does not serialise.
	if _, err := s.engine.RunSource(ctx, file, in.Source, "sample", SampleMessages(s.now())); err != nil {
		return invalid(in.Name, err)
	}
	return nil
}

// Create validates and stores a new parser as version 1.
func (s *Service) Create(ctx context.Context, in Input) (*View, error) {
	if err := s.validate(ctx, in); err != nil {
		return nil, err
	}
	p := &Parser{Name: in.Name, Description: strings.TrimSpace(in.Description), Source: in.Source}
	if err := s.repo.CreateParser(ctx, p); err != nil {
		return nil, err
	}
	return view(p), nil
}

// Update validates and stores a new version of the named parser.
func (s *Service) Update(ctx context.Context, name string, in Input) (*View, error) {
	if _, ok := bundled.Get(name); ok {
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "%q is a bundled parser and cannot be changed; copy its source into a parser of your own", name)
	}
	if in.Name != "" && in.Name != name {
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "name %q differs from %q in the URL; parsers cannot be renamed", in.Name, name)
	}
	in.Name = name
	if _, err := s.repo.Parser(ctx, name); err != nil {
		return nil, err
	}
	if err := s.validate(ctx, in); err != nil {
		return nil, err
	}
	p := &Parser{Name: name, Description: strings.TrimSpace(in.Description), Source: in.Source}
	if err := s.repo.UpdateParser(ctx, p); err != nil {
		return nil, err
	}
	return view(p), nil
}

// Get returns the named parser, bundled or stored, with its source.
func (s *Service) Get(ctx context.Context, name string) (*View, error) {
	if b, ok := bundled.Get(name); ok {
		return bundledView(b, true), nil
	}
	p, err := s.repo.Parser(ctx, name)
	if err != nil {
		return nil, err
	}
	return view(p), nil
}

// Exists returns nil when a parser of that name exists, bundled or
// stored, else an ENOTFOUND error.
func (s *Service) Exists(ctx context.Context, name string) error {
	if _, ok := bundled.Get(name); ok {
		return nil
	}
	_, err := s.repo.Parser(ctx, name)
	return err
}

// List returns the bundled parsers, then the stored ones, without sources.
func (s *Service) List(ctx context.Context) ([]*View, error) {
	var out []*View
	for _, b := range bundled.All() {
		out = append(out, bundledView(b, false))
	}
	stored, err := s.repo.Parsers(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range stored {
		v := view(p)
		v.Source = ""
		out = append(out, v)
	}
	return out, nil
}

// Versions lists the versions of a stored parser, without sources.
func (s *Service) Versions(ctx context.Context, name string) ([]*View, error) {
	vs, err := s.repo.ParserVersions(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]*View, len(vs))
	for i, v := range vs {
		out[i] = &View{Name: name, Version: v.Version, CreatedAt: v.CreatedAt}
	}
	return out, nil
}

// Version returns one version of a stored parser, with its source.
func (s *Service) Version(ctx context.Context, name string, version int64) (*View, error) {
	v, err := s.repo.ParserVersion(ctx, name, version)
	if err != nil {
		return nil, err
	}
	return &View{Name: name, Version: v.Version, Source: v.Source, CreatedAt: v.CreatedAt}, nil
}

// Delete removes a stored parser; refused for bundled parsers and while an
// asset uses it.
func (s *Service) Delete(ctx context.Context, name string) error {
	if _, ok := bundled.Get(name); ok {
		return soarkafka.Errorf(soarkafka.EINVALID, "%q is a bundled parser and cannot be deleted", name)
	}
	return s.repo.DeleteParser(ctx, name)
}

// TestInput is a playground request: a parser (source, or the name of a
// bundled or stored one) and the messages to run it on, or the asset whose
// topic to sample live for them.
type TestInput struct {
	Name     string
	Source   string
	Topic    string
	Messages []soar.Message

	// Asset names the asset whose topic is sampled (nothing committed):
	// Count messages (default DefaultSampleCount) From "latest" (the
	// default) or "earliest". The asset's parser deadline bounds the run.
	Asset string
	From  string
	Count int
}

// Defaults of a live sample.
const (
	DefaultSampleFrom  = "latest"
	DefaultSampleCount = 20
)

// TestOutput is what the playground answers: the results, or the error,
// never both.
type TestOutput struct {
	Parser     string    `json:"parser"`
	Messages   int       `json:"messages"`
	Run        *Run      `json:"run,omitempty"`
	Error      *RunError `json:"error,omitempty"`
	DurationMS float64   `json:"duration_ms"`
}

// Test runs a parser on the messages without storing anything. A parser
// failure is part of the output, not an error: the error is for a request
// that cannot run (unknown parser name).
func (s *Service) Test(ctx context.Context, in TestInput) (*TestOutput, error) {
	if in.Asset != "" {
		if len(in.Messages) > 0 {
			return nil, soarkafka.Errorf(soarkafka.EINVALID, "give messages or asset with sample, not both")
		}
		cfg, msgs, err := s.sample(ctx, in)
		if err != nil {
			return nil, err
		}
		in.Messages = msgs
		if in.Topic == "" {
			in.Topic = cfg.Topic
		}
		// The asset's own deadline for its parser applies to its sample.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.ParserDeadline())
		defer cancel()
	}
	if in.Topic == "" {
		in.Topic = "playground"
	}
	out := &TestOutput{Messages: len(in.Messages)}
	var run Run
	var err error
	switch {
	case in.Source != "":
		out.Parser = "(source)"
		if in.Name != "" {
			out.Parser = in.Name
		}
		file := out.Parser
		if !strings.HasSuffix(file, ".go") {
			file += ".go"
		}
		if err = sandbox.Check(file, in.Source); err == nil {
			run, err = s.engine.RunSource(ctx, file, in.Source, in.Topic, in.Messages)
		}
	case in.Name != "":
		out.Parser = in.Name
		if b, ok := bundled.Get(in.Name); ok {
			run, err = s.engine.RunBundled(b, in.Topic, in.Messages)
		} else {
			p, perr := s.repo.Parser(ctx, in.Name)
			if perr != nil {
				return nil, perr
			}
			run, err = s.engine.RunSource(ctx, p.Name+".go", p.Source, in.Topic, in.Messages)
		}
	default:
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "give source (a parser's Go source) or parser (the name of a parser)")
	}
	if err != nil {
		re := DescribeError(err)
		if re == nil {
			return nil, fmt.Errorf("parser %s: %w", out.Parser, err)
		}
		out.Error = re
		return out, nil
	}
	out.Run = &run
	out.DurationMS = float64(run.Duration.Microseconds()) / 1000
	return out, nil
}

// sample resolves in.Asset and reads the sample of its topic.
func (s *Service) sample(ctx context.Context, in TestInput) (assets.Config, []soar.Message, error) {
	if s.live.assets == nil || s.live.sampler == nil {
		return assets.Config{}, nil, soarkafka.Errorf(soarkafka.EUNAVAILABLE, "asset %q: live samples are not available on this server", in.Asset)
	}
	cfg, _, err := s.live.assets.Resolve(ctx, in.Asset)
	if err != nil {
		return assets.Config{}, nil, err
	}
	from, count := in.From, in.Count
	if from == "" {
		from = DefaultSampleFrom
	}
	if count == 0 {
		count = DefaultSampleCount
	}
	msgs, err := s.live.sampler.Sample(ctx, cfg, s.live.logger, from, count)
	if err != nil {
		if soarkafka.ErrorCode(err) == soarkafka.EINTERNAL {
			err = soarkafka.Errorf(soarkafka.EUNAVAILABLE, "asset %q: %v", in.Asset, err)
		}
		return assets.Config{}, nil, err
	}
	return cfg, msgs, nil
}

// SampleMessages is the built-in batch every saved parser must handle: a
// JSON object, a JSON list, plain text and an empty value, with a key and
// headers, as a topic would carry them.
func SampleMessages(now time.Time) []soar.Message {
	values := []string{
		`{"eventName":"ConsoleLogin","sourceIPAddress":"203.0.113.7","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/alice"}}`,
		`[{"alert":"one"},{"alert":"two"}]`,
		`plain text: disk usage 91% on host-42`,
		``,
	}
	msgs := make([]soar.Message, len(values))
	for i, v := range values {
		msgs[i] = soar.Message{Topic: "sample", Partition: 0, Offset: int64(i), Key: []byte(fmt.Sprintf("key-%d", i)),
			Value: []byte(v), Message: v, Timestamp: now.UTC().Truncate(time.Millisecond),
			Headers: []soar.Header{{Key: "source", Value: "soarkafka-sample"}}}
	}
	return msgs
}

func view(p *Parser) *View {
	return &View{Name: p.Name, Description: p.Description, Version: p.Version, Source: p.Source, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

func bundledView(b bundled.Parser, source bool) *View {
	v := &View{Name: b.Name, Description: b.Description, Bundled: true}
	if source {
		v.Source = b.Source
	}
	return v
}

// Bound is a parser resolved by name, ready to run batches: a bundled
// parser natively, a user parser (at the version current when it was
// resolved) in sandbox workers.
type Bound struct {
	// Name is the parser's name; Version is 0 for a bundled parser.
	Name    string
	Version int64
	Native  bool
	run     func(ctx context.Context, topic string, msgs []soar.Message) (Run, error)
	native  func(topic string, msgs []soar.Message) ([]soar.Result, error)
}

// Containers runs the parser on one batch and returns the containers to
// store: a bundled parser natively, its results encoded straight from the
// values; a user parser in its sandbox workers, its JSON results read and
// validated in one pass. ctx bounds a user parser's run (the asset's
// parser deadline). An error IsParserFailure reports is the parser's
// failure on this batch; any other is the server's own.
func (b *Bound) Containers(ctx context.Context, topic string, msgs []soar.Message) ([]ingest.Container, error) {
	if b.native != nil {
		results, err := b.native(topic, msgs)
		if err != nil {
			return nil, err
		}
		containers, err := containersOf(results)
		if err != nil {
			return nil, fmt.Errorf("parser %q: %w", b.Name, err)
		}
		return containers, nil
	}
	run, err := b.run(ctx, topic, msgs)
	if err != nil {
		return nil, err
	}
	containers, err := containersFromJSON(run.Results)
	if err != nil {
		return nil, fmt.Errorf("parser %q: %w", b.Name, err)
	}
	return containers, nil
}

// Run runs the parser on one batch and returns its results as the JSON
// the playground shows; polls use Containers. An error DescribeError
// describes is the parser's failure on this batch; any other is the
// server's own.
func (b *Bound) Run(ctx context.Context, topic string, msgs []soar.Message) (Run, error) {
	return b.run(ctx, topic, msgs)
}

// DefaultParser is the parser of an asset whose message_parser is empty.
const DefaultParser = "default"

// Bind resolves the parser named name ("" is DefaultParser) for a poll of
// asset: a user parser runs in workers that serve that asset only. It is
// ENOTFOUND when no bundled or stored parser has that name.
func (s *Service) Bind(ctx context.Context, asset, name string) (*Bound, error) {
	if name == "" {
		name = DefaultParser
	}
	if b, ok := bundled.Get(name); ok {
		return &Bound{Name: name, Native: true, run: func(_ context.Context, topic string, msgs []soar.Message) (Run, error) {
			return s.engine.RunBundled(b, topic, msgs)
		}, native: func(topic string, msgs []soar.Message) ([]soar.Result, error) {
			return s.engine.RunBundledResults(b, topic, msgs)
		}}, nil
	}
	p, err := s.repo.Parser(ctx, name)
	if err != nil {
		return nil, err
	}
	file := p.Name + ".go"
	return &Bound{Name: name, Version: p.Version, run: func(ctx context.Context, topic string, msgs []soar.Message) (Run, error) {
		return s.engine.RunSourceFor(ctx, asset, file, p.Source, topic, msgs)
	}}, nil
}
