package integrations_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/soarkafka/soarkafka/integrations"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

// unifiedIntegration is the integration YAML as XSOARIntegration builds it,
// decoded.
type unifiedIntegration struct {
	CommonFields struct {
		ID string `yaml:"id"`
	} `yaml:"commonfields"`
	Name          string `yaml:"name"`
	Configuration []struct {
		Name         string   `yaml:"name"`
		Type         int      `yaml:"type"`
		Options      []string `yaml:"options"`
		DefaultValue *string  `yaml:"defaultvalue"`
	} `yaml:"configuration"`
	Script struct {
		Script      string `yaml:"script"`
		Type        string `yaml:"type"`
		Subtype     string `yaml:"subtype"`
		DockerImage string `yaml:"dockerimage"`
		IsFetch     bool   `yaml:"isfetch"`
		Commands    []struct {
			Name      string `yaml:"name"`
			Arguments []struct {
				Name         string  `yaml:"name"`
				Required     bool    `yaml:"required"`
				DefaultValue *string `yaml:"defaultValue"`
			} `yaml:"arguments"`
			Outputs []struct {
				ContextPath string `yaml:"contextPath"`
				Type        string `yaml:"type"`
			} `yaml:"outputs"`
		} `yaml:"commands"`
	} `yaml:"script"`
}

func buildXSOAR(t *testing.T) ([]byte, unifiedIntegration) {
	t.Helper()
	var buf bytes.Buffer
	if err := integrations.XSOARIntegration(&buf); err != nil {
		t.Fatal(err)
	}
	var u unifiedIntegration
	if err := yaml.Unmarshal(buf.Bytes(), &u); err != nil {
		t.Fatalf("the unified YAML does not parse: %v\n%s", err, buf.Bytes())
	}
	return buf.Bytes(), u
}

// The unified YAML parses, embeds SoarKafka.py as demisto-sdk's unifier
// does (the demistomock and CommonServerPython import lines blanked, every
// other line as written), and declares each command the script handles,
// with context outputs.
func TestXSOARUnifiedYAML(t *testing.T) {
	_, u := buildXSOAR(t)
	py, err := os.ReadFile(filepath.Join("xsoar", "SoarKafka.py"))
	if err != nil {
		t.Fatal(err)
	}
	src, got := strings.Split(string(py), "\n"), strings.Split(u.Script.Script, "\n")
	if len(got) != len(src) {
		t.Fatalf("script.script has %d lines, SoarKafka.py %d", len(got), len(src))
	}
	blanked := 0
	for i := range src {
		switch {
		case src[i] == "import demistomock as demisto" || src[i] == "from CommonServerPython import *":
			if got[i] != "" {
				t.Errorf("line %d: %q kept; XSOAR cannot import it", i+1, got[i])
			}
			blanked++
		case got[i] != src[i]:
			t.Errorf("line %d: script.script has %q, SoarKafka.py %q", i+1, got[i], src[i])
		}
	}
	if blanked != 2 {
		t.Errorf("%d platform import lines in SoarKafka.py, want 2 (demistomock and CommonServerPython)", blanked)
	}
	if u.CommonFields.ID != "SoarKafka" || u.Name != "SoarKafka" {
		t.Errorf("id %q name %q", u.CommonFields.ID, u.Name)
	}
	if u.Script.Type != "python" || u.Script.Subtype != "python3" || !strings.HasPrefix(u.Script.DockerImage, "demisto/python3:") || !u.Script.IsFetch {
		t.Errorf("script runtime: type %q subtype %q dockerimage %q isfetch %v", u.Script.Type, u.Script.Subtype, u.Script.DockerImage, u.Script.IsFetch)
	}

	var params []string
	for _, c := range u.Configuration {
		params = append(params, c.Name)
	}
	for _, p := range []string{"url", "api_token", "asset", "insecure", "proxy", "isFetch", "incidentType", "first_fetch", "max_fetch", "incident_per"} {
		if !slices.Contains(params, p) {
			t.Errorf("configuration has no %s", p)
		}
		if !strings.Contains(u.Script.Script, `"`+p+`"`) && p != "incidentType" {
			t.Errorf("the script never reads parameter %s", p)
		}
	}

	want := []string{"soarkafka-post-data", "soarkafka-poll", "soarkafka-ingest-status", "soarkafka-list-topics"}
	var names []string
	for _, c := range u.Script.Commands {
		names = append(names, c.Name)
		if len(c.Outputs) == 0 {
			t.Errorf("%s declares no context outputs", c.Name)
		}
		for _, o := range c.Outputs {
			if !strings.HasPrefix(o.ContextPath, "SoarKafka.") || o.Type == "" {
				t.Errorf("%s: output %q (type %q) is not under SoarKafka. with a type", c.Name, o.ContextPath, o.Type)
			}
		}
		for _, a := range c.Arguments {
			if !strings.Contains(u.Script.Script, `"`+a.Name+`"`) {
				t.Errorf("%s: argument %s is never read by the script", c.Name, a.Name)
			}
		}
		if !strings.Contains(u.Script.Script, `"`+c.Name+`"`) {
			t.Errorf("%s is declared but the script does not handle it", c.Name)
		}
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("commands %v, want %v", names, want)
	}
	// Post data takes the action's parameters plus key, headers, partition.
	for _, c := range u.Script.Commands {
		if c.Name != "soarkafka-post-data" {
			continue
		}
		var args []string
		for _, a := range c.Arguments {
			args = append(args, a.Name)
		}
		for _, a := range []string{"data", "data_type", "topic", "timeout", "json_format", "key", "headers", "partition", "timestamp"} {
			if !slices.Contains(args, a) {
				t.Errorf("soarkafka-post-data has no argument %s", a)
			}
		}
	}
}

// Nothing newer than Python 3.9 in the script: it must run on every
// python3 image XSOAR ships. The Python tests run on Debian's python3; this
// catches what 3.9 would refuse and a newer interpreter accepts.
func TestXSOARScriptIsPython39(t *testing.T) {
	py, err := os.ReadFile(filepath.Join("xsoar", "SoarKafka.py"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\s*match\s+.*:\s*$`),            // match statements (3.10)
		regexp.MustCompile(`(?m)(def .*|: *\w+) *\w+ *\| *None`), // X | None annotations (3.10)
		regexp.MustCompile(`(?m)^\s*except\*`),                   // exception groups (3.11)
		regexp.MustCompile(`(?m)\bdatetime\.UTC\b`),              // 3.11
		regexp.MustCompile(`(?m)^\s*type\s+\w+\s*=`),             // type statements (3.12)
	} {
		if loc := bad.FindIndex(py); loc != nil {
			t.Errorf("SoarKafka.py: %q needs a Python newer than 3.9", py[loc[0]:loc[1]])
		}
	}
	// The standard library and requests only, besides the platform's own
	// modules, which XSOAR provides.
	allowed := []string{"demistomock", "CommonServerPython", "json", "re", "datetime", "urllib.parse", "requests"}
	for _, m := range regexp.MustCompile(`(?m)^\s*(?:import|from)\s+([\w.]+)`).FindAllSubmatch(py, -1) {
		if !slices.Contains(allowed, string(m[1])) {
			t.Errorf("SoarKafka.py imports %s; only %v are allowed", m[1], allowed)
		}
	}
}

// Python 3.9's own grammar accepts the script (ast.parse with
// feature_version refuses the syntax later versions added).
func TestXSOARScriptParsesAsPython39(t *testing.T) {
	python := testenv.Python(t)
	cmd := exec.Command(python, "-c", "import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1], feature_version=(3, 9))", filepath.Join("xsoar", "SoarKafka.py"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("SoarKafka.py is not Python 3.9: %v\n%s", err, out)
	}
}

// The real script, extracted from the unified YAML the package build
// writes, run as XSOAR runs it (tests/xsoar: a demistomock and the
// CommonServerPython functions it uses) against a real soarkafka process
// and its development broker: fetches with new messages between, every
// command, a bad token.
func TestXSOARIntegrationAgainstServer(t *testing.T) {
	python := testenv.Python(t)
	srv := startServer(t)
	_, u := buildXSOAR(t)
	script := filepath.Join(t.TempDir(), "SoarKafka.py")
	if err := os.WriteFile(script, []byte(u.Script.Script), 0o644); err != nil {
		t.Fatal(err)
	}
	// What the YAML declares, for the harness to apply as XSOAR does.
	type argSpec struct {
		Default  *string `json:"default"`
		Required bool    `json:"required"`
	}
	declared := struct {
		Params   map[string]*string            `json:"params"`
		Commands map[string]map[string]argSpec `json:"commands"`
	}{Params: map[string]*string{}, Commands: map[string]map[string]argSpec{}}
	for _, c := range u.Configuration {
		declared.Params[c.Name] = c.DefaultValue
	}
	for _, c := range u.Script.Commands {
		declared.Commands[c.Name] = map[string]argSpec{}
		for _, a := range c.Arguments {
			declared.Commands[c.Name][a.Name] = argSpec{a.DefaultValue, a.Required}
		}
	}
	declaredFile := filepath.Join(t.TempDir(), "declared.json")
	b, err := json.Marshal(declared)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(declaredFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-B", "-m", "unittest", "-v", "test_soarkafka_xsoar")
	cmd.Dir = filepath.Join("tests", "xsoar")
	cmd.Env = append(os.Environ(), "SOARKAFKA_URL="+srv.URL, "SOARKAFKA_TOKEN="+srv.Token,
		"SOARKAFKA_BROKER="+srv.Broker, "SOARKAFKA_XSOAR_SCRIPT="+script, "SOARKAFKA_XSOAR_DECLARED="+declaredFile, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python tests failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
