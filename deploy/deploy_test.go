package deploy

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/soarkafka/soarkafka/app"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

const chart = "helm/soarkafka"

// The parts of the rendered manifests the tests look at, in the field names
// of the Kubernetes API.
type (
	object struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec yaml.Node `yaml:"spec"`
	}
	deployment struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	podSpec struct {
		EnableServiceLinks           *bool `yaml:"enableServiceLinks"`
		AutomountServiceAccountToken *bool `yaml:"automountServiceAccountToken"`
		SecurityContext              struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
			RunAsUser    int   `yaml:"runAsUser"`
			RunAsGroup   int   `yaml:"runAsGroup"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
		Volumes    []volume    `yaml:"volumes"`
	}
	volume struct {
		Name     string    `yaml:"name"`
		EmptyDir *struct{} `yaml:"emptyDir"`
		PVC      *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
	}
	container struct {
		Image string `yaml:"image"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		Env            []envVar `yaml:"env"`
		LivenessProbe  probe    `yaml:"livenessProbe"`
		ReadinessProbe probe    `yaml:"readinessProbe"`
		StartupProbe   probe    `yaml:"startupProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	envVar struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `yaml:"name"`
				Key      string `yaml:"key"`
				Optional bool   `yaml:"optional"`
			} `yaml:"secretKeyRef"`
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	}
	service struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	pdb struct {
		MaxUnavailable *int `yaml:"maxUnavailable"`
		MinAvailable   *int `yaml:"minAvailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	}
)

// manifests are the objects of one `helm template`, by kind.
type manifests map[string][]object

func (m manifests) one(t *testing.T, kind string, spec any) {
	t.Helper()
	if len(m[kind]) != 1 {
		t.Fatalf("want one %s, rendered %d", kind, len(m[kind]))
	}
	if err := m[kind][0].Spec.Decode(spec); err != nil {
		t.Fatalf("%s spec: %v", kind, err)
	}
}

// helmTemplate renders the chart with the values files and --set flags
// given, and returns the objects, or the error helm printed.
func helmTemplate(t *testing.T, args ...string) (manifests, error) {
	t.Helper()
	helm := testenv.Helm(t)
	cmd := exec.Command(helm, append([]string{"template", "rel", chart, "--namespace", "ns"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm template %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	out := manifests{}
	dec := yaml.NewDecoder(&stdout)
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template %s: output is not YAML: %v", strings.Join(args, " "), err)
		}
		if o.Kind != "" {
			out[o.Kind] = append(out[o.Kind], o)
		}
	}
	return out, nil
}

func mustTemplate(t *testing.T, args ...string) manifests {
	t.Helper()
	m, err := helmTemplate(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// configKeys reads the server's configuration keys and their environment
// variables from the generated table in docs/api.md, so that the deploy
// files can name only keys the server reads.
func configKeys(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z_.]+)` \\| `(SOARKAFKA_[A-Z_]+)` \\|")
	keys := map[string]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		switch line := sc.Text(); {
		case strings.Contains(line, "<!-- config-keys:begin -->"):
			in = true
		case strings.Contains(line, "<!-- config-keys:end -->"):
			in = false
		case in:
			if m := row.FindStringSubmatch(line); m != nil {
				keys[m[1]] = m[2]
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"database_url", "secret_key", "api_token", "listen"} {
		if keys[want] == "" {
			t.Fatalf("docs/api.md's configuration table has no %s; has its format changed?", want)
		}
	}
	return keys
}

// configEnv is the set of the server's environment variables.
func configEnv(t *testing.T) map[string]bool {
	env := map[string]bool{}
	for _, name := range configKeys(t) {
		env[name] = true
	}
	return env
}

// Stand-ins for what the Secret holds, valid as the server checks them.
var secretValues = map[string]string{
	"database-url":     "postgres://soarkafka:pw@db.example:5432/soarkafka",
	"secret-key":       "a2V5LWtleS1rZXkta2V5LWtleS1rZXkta2V5LWtleSE=",
	"api-token":        "token-token-token-token",
	"console-password": "console-password-1",
}

// serverConfig loads the server's configuration from the environment the
// container would have, as the server does at start, so that every value the
// deploy files set is one it accepts.
func serverConfig(t *testing.T, c container) app.Config {
	t.Helper()
	var env, shown []string
	for _, e := range c.Env {
		var v string
		show := ""
		switch {
		case e.Value != nil:
			v = *e.Value
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			v = secretValues[e.ValueFrom.SecretKeyRef.Key]
			show = "(from the Secret)"
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			v = "rel-soarkafka-5d8f-x2x"
		default:
			t.Fatalf("env %s: no value", e.Name)
		}
		env = append(env, e.Name+"="+v)
		shown = append(shown, e.Name+"="+cmp.Or(show, v))
	}
	cfg, err := app.LoadConfig("", nil, env)
	if err != nil {
		t.Fatalf("the server refuses the environment %v: %v", shown, err)
	}
	return cfg
}

func envOf(c container) map[string]envVar {
	m := map[string]envVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

func TestHelmLint(t *testing.T) {
	helm := testenv.Helm(t)
	for _, args := range [][]string{
		nil, // the defaults: three replicas on PostgreSQL
		{"--set", "replicaCount=1", "--set", "secret.existingSecret="},
	} {
		cmd := exec.Command(helm, append([]string{"lint", "--strict", chart}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("helm lint --strict %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestHelmTemplateDefaults checks what the defaults deploy against what the
// server serves and reads: its probe routes, its metrics path and port, its
// environment variables, and its secrets from a Secret.
func TestHelmTemplateDefaults(t *testing.T) {
	m := mustTemplate(t)
	known := configEnv(t)

	var d deployment
	m.one(t, "Deployment", &d)
	if d.Replicas != 3 {
		t.Errorf("replicas: %d, want 3", d.Replicas)
	}
	if d.Strategy.Type != "RollingUpdate" {
		t.Errorf("strategy on PostgreSQL: %q, want RollingUpdate", d.Strategy.Type)
	}
	for k, v := range d.Selector.MatchLabels {
		if d.Template.Metadata.Labels[k] != v {
			t.Errorf("pod label %s=%q, selector wants %q", k, d.Template.Metadata.Labels[k], v)
		}
	}
	pod := d.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != "soarkafka:0.1.0" {
		t.Errorf("image %q, want soarkafka:<appVersion>", c.Image)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Fatalf("ports %+v, want http 8080", c.Ports)
	}
	port := c.Ports[0].ContainerPort

	env := envOf(c)
	for name := range env {
		if !known[name] {
			t.Errorf("env %s is not a configuration key of the server (docs/api.md)", name)
		}
	}
	for name, key := range map[string]string{
		"SOARKAFKA_DATABASE_URL": "database-url",
		"SOARKAFKA_SECRET_KEY":   "secret-key",
		"SOARKAFKA_API_TOKEN":    "api-token",
	} {
		e, ok := env[name]
		switch {
		case !ok:
			t.Errorf("env %s missing", name)
		case e.Value != nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil:
			t.Errorf("env %s: want a secretKeyRef, got %+v", name, e)
		case e.ValueFrom.SecretKeyRef.Name != "soarkafka" || e.ValueFrom.SecretKeyRef.Key != key || e.ValueFrom.SecretKeyRef.Optional:
			t.Errorf("env %s: secretKeyRef %+v, want required key %q of Secret soarkafka", name, *e.ValueFrom.SecretKeyRef, key)
		}
	}
	if e := env["SOARKAFKA_CONSOLE_PASSWORD"]; e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || !e.ValueFrom.SecretKeyRef.Optional {
		t.Errorf("SOARKAFKA_CONSOLE_PASSWORD: want an optional secretKeyRef, got %+v", e)
	}
	if e := env["SOARKAFKA_REPLICA_NAME"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("SOARKAFKA_REPLICA_NAME: want the pod's name, got %+v", e)
	}
	value := func(name string) string {
		if e := env[name]; e.Value != nil {
			return *e.Value
		}
		return ""
	}
	if got, want := value("SOARKAFKA_LISTEN"), fmt.Sprintf("0.0.0.0:%d", port); got != want {
		t.Errorf("SOARKAFKA_LISTEN %q, want %q (the container port)", got, want)
	}
	if value("SOARKAFKA_DATA_DIR") != "/data" {
		t.Errorf("SOARKAFKA_DATA_DIR %q, want /data", value("SOARKAFKA_DATA_DIR"))
	}

	// The probes name routes of package web on the named port.
	for name, p := range map[string]struct {
		probe
		want string
	}{
		"liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}, "startup": {c.StartupProbe, "/healthz"},
	} {
		if p.HTTPGet == nil || p.HTTPGet.Path != p.want || p.HTTPGet.Port != "http" {
			t.Errorf("%s probe %+v, want GET %s on port http", name, p.HTTPGet, p.want)
		}
	}

	// Prometheus scrapes /metrics on the container's port, which must then
	// be served without the token.
	ann := d.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != fmt.Sprint(port) {
		t.Errorf("annotations %v, want prometheus.io scrape true, path /metrics, port %d", ann, port)
	}
	if value("SOARKAFKA_METRICS_PUBLIC") != "true" {
		t.Errorf("SOARKAFKA_METRICS_PUBLIC %q: a scrape without the token needs true", value("SOARKAFKA_METRICS_PUBLIC"))
	}

	cfg := serverConfig(t, c)
	if cfg.Listen != fmt.Sprintf("0.0.0.0:%d", port) || cfg.DataDir != "/data" || !cfg.Metrics.Public ||
		cfg.DatabaseURL != secretValues["database-url"] || cfg.ReplicaName == "" {
		t.Errorf("the server reads listen %q, data_dir %q, metrics.public %v, database_url %q, replica_name %q", cfg.Listen, cfg.DataDir, cfg.Metrics.Public, cfg.DatabaseURL, cfg.ReplicaName)
	}
	if !slices.Contains(cfg.Network.DeniedHosts, "169.254.169.254") {
		t.Errorf("network.denied_hosts %q: want the metadata address denied", cfg.Network.DeniedHosts)
	}

	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("no %s request: %+v", r, c.Resources)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Errorf("no memory limit: %+v", c.Resources)
	}

	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		!slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("container securityContext %+v, want a read-only root, no privilege escalation, all capabilities dropped", sc)
	}
	psc := pod.SecurityContext
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser != 65532 || psc.RunAsGroup != 65532 {
		t.Errorf("pod securityContext %+v, want non-root 65532:65532 (the image's user)", psc)
	}
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("enableServiceLinks: want false, or a Service named soarkafka puts SOARKAFKA_* variables in the environment")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken: want false; the server never calls the Kubernetes API")
	}
	// The root is read-only: data_dir and the parser workers' directories
	// need volumes of their own.
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm.Name
	}
	for _, path := range []string{"/data", "/tmp"} {
		name, ok := mounts[path]
		if !ok {
			t.Errorf("nothing mounted on %s", path)
			continue
		}
		i := slices.IndexFunc(pod.Volumes, func(v volume) bool { return v.Name == name })
		if i < 0 || pod.Volumes[i].EmptyDir == nil {
			t.Errorf("%s: volume %q is not an emptyDir", path, name)
		}
	}

	var svc service
	m.one(t, "Service", &svc)
	if !mapsEqual(svc.Selector, d.Selector.MatchLabels) {
		t.Errorf("Service selector %v, Deployment's %v", svc.Selector, d.Selector.MatchLabels)
	}
	if len(svc.Ports) != 1 || svc.Ports[0].TargetPort != "http" {
		t.Errorf("Service ports %+v, want one to targetPort http", svc.Ports)
	}

	var budget pdb
	m.one(t, "PodDisruptionBudget", &budget)
	if budget.MaxUnavailable == nil || *budget.MaxUnavailable != 1 || budget.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget %+v, want maxUnavailable 1", budget)
	}
	if !mapsEqual(budget.Selector.MatchLabels, d.Selector.MatchLabels) {
		t.Errorf("PodDisruptionBudget selector %v, Deployment's %v", budget.Selector.MatchLabels, d.Selector.MatchLabels)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestHelmRefusesReplicasWithoutPostgres: SQLite is one file on one pod,
// and each replica would generate its own secret key and API token, so more
// than one replica without them from a Secret must not render at all.
func TestHelmRefusesReplicasWithoutPostgres(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in helm's error
	}{
		{"no secret", []string{"--set", "secret.existingSecret="}, "replicaCount: 3 replicas need PostgreSQL, but secret.existingSecret is empty"},
		{"two replicas, no secret", []string{"--set", "replicaCount=2", "--set", "secret.existingSecret="}, "replicaCount: 2 replicas need PostgreSQL"},
		{"no database URL key", []string{"--set", "secret.keys.databaseURL="}, "secret.keys.databaseURL: empty"},
		{"no secret key", []string{"--set", "secret.keys.secretKey="}, "secret.keys.secretKey: empty"},
		{"no API token", []string{"--set", "secret.keys.apiToken="}, "secret.keys.apiToken: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantRefused(t, tc.args, tc.want) })
	}

	// One replica on SQLite renders, replaced rather than rolled (one
	// volume, one writer), with no secret references.
	m := mustTemplate(t, "--set", "replicaCount=1", "--set", "secret.existingSecret=", "--set", "data.existingClaim=soarkafka-data")
	var d deployment
	m.one(t, "Deployment", &d)
	if d.Replicas != 1 || d.Strategy.Type != "Recreate" {
		t.Errorf("replicas %d strategy %q, want 1 and Recreate", d.Replicas, d.Strategy.Type)
	}
	for _, e := range d.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Errorf("env %s refers to a Secret, but none is set", e.Name)
		}
	}
	for _, v := range d.Template.Spec.Volumes {
		if v.Name == "data" && (v.PVC == nil || v.PVC.ClaimName != "soarkafka-data") {
			t.Errorf("data volume %+v, want the claim soarkafka-data", v)
		}
	}
}

// TestHelmSchemaConfigKeys: the schema lets config name exactly the
// server's configuration keys, so that a misspelt key is refused rather than
// set as a variable the server never reads.
func TestHelmSchemaConfigKeys(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chart, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Config struct {
				PropertyNames struct {
					Enum []string `json:"enum"`
				} `json:"propertyNames"`
			} `json:"config"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	inSchema := schema.Properties.Config.PropertyNames.Enum
	keys := configKeys(t)
	for _, k := range inSchema {
		if _, ok := keys[k]; !ok {
			t.Errorf("values.schema.json allows config.%s, which is not a configuration key of docs/api.md; remove it from properties.config.propertyNames", k)
		}
	}
	for k := range keys {
		if !slices.Contains(inSchema, k) {
			t.Errorf("configuration key %s (docs/api.md) is missing from values.schema.json's properties.config.propertyNames; add it", k)
		}
	}
}

// wantRefused renders the chart with args and wants helm to refuse, saying
// want.
func wantRefused(t *testing.T, args []string, want string) {
	t.Helper()
	_, err := helmTemplate(t, args...)
	if err == nil {
		t.Fatalf("rendered; want a failure saying %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v\nwant it to say %q", err, want)
	}
}

// TestHelmRefusesBadValues: a misspelt or ill-typed value (values.schema.json)
// and a secret or a chart-owned key in config stop the render, naming the
// value.
func TestHelmRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a misspelt value", []string{"--set", "replicas=2"}, "additional properties 'replicas' not allowed"},
		{"negative replicas", []string{"--set", "replicaCount=-1"}, "/replicaCount"},
		{"a probe path without its slash", []string{"--set", "probes.readiness.path=readyz"}, "/probes/readiness/path"},
		{"a shutdown timeout without a unit", []string{"--set-string", "shutdownTimeout=30"}, "/shutdownTimeout"},
		{"a secret in values", []string{"--set", "config.database_url=postgres://u:p@db/x"}, "config.database_url: a secret does not belong in values"},
		{"a key the chart sets", []string{"--set", "config.listen=0.0.0.0:9000"}, "config.listen: the chart sets this key itself"},
		{"not a key", []string{"--set", "config.log_levl=debug"}, "invalid propertyName 'log_levl'"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantRefused(t, tc.args, tc.want) })
	}
}

// TestHelmConfigEnv checks that config's keys reach the server as the
// environment variables it reads, values as it parses them: lists comma
// separated, and large numbers in digits (YAML numbers are floats to helm,
// which would print 2.097152e+07).
func TestHelmConfigEnv(t *testing.T) {
	values := filepath.Join(t.TempDir(), "values.yaml")
	doc := `config:
  log_level: debug
  max_body_bytes: 20971520
  network.allowed_hosts: ["10.0.0.0/8:9092", "*.kafka.example:9093"]
  scheduler.enabled: false
  parser.timeout: 15s
`
	if err := os.WriteFile(values, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	m := mustTemplate(t, "-f", values)
	known := configEnv(t)
	var d deployment
	m.one(t, "Deployment", &d)
	env := envOf(d.Template.Spec.Containers[0])
	for name, want := range map[string]string{
		"SOARKAFKA_LOG_LEVEL":             "debug",
		"SOARKAFKA_MAX_BODY_BYTES":        "20971520",
		"SOARKAFKA_NETWORK_ALLOWED_HOSTS": "10.0.0.0/8:9092,*.kafka.example:9093",
		"SOARKAFKA_SCHEDULER_ENABLED":     "false",
		"SOARKAFKA_PARSER_TIMEOUT":        "15s",
		// The defaults' config stays unless overridden.
		"SOARKAFKA_LOG_FORMAT": "json",
	} {
		if !known[name] {
			t.Errorf("%s is not a configuration key of the server", name)
		}
		if e, ok := env[name]; !ok || e.Value == nil {
			t.Errorf("env %s: %+v, want the value %q", name, e, want)
		} else if *e.Value != want {
			t.Errorf("env %s=%q, want %q", name, *e.Value, want)
		}
	}
	cfg := serverConfig(t, d.Template.Spec.Containers[0])
	if cfg.MaxBodyBytes != 20971520 || cfg.Scheduler.Enabled || !slices.Equal(cfg.Network.AllowedHosts, []string{"10.0.0.0/8:9092", "*.kafka.example:9093"}) {
		t.Errorf("the server reads max_body_bytes %d, scheduler.enabled %v, network.allowed_hosts %q", cfg.MaxBodyBytes, cfg.Scheduler.Enabled, cfg.Network.AllowedHosts)
	}
}

// TestCompose reads deploy/compose.yaml as compose would (anchors and
// merge keys resolved) and checks the one-host cluster it describes.
func TestCompose(t *testing.T) {
	raw, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type healthcheck struct {
		Test    []string `yaml:"test"`
		Timeout string   `yaml:"timeout"`
	}
	type svc struct {
		Image string `yaml:"image"`
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck *healthcheck `yaml:"healthcheck"`
		ReadOnly    bool         `yaml:"read_only"`
		CapDrop     []string     `yaml:"cap_drop"`
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	// Compose refuses to start without the key and the token.
	if err := interpolate(&root, map[string]string{"SOARKAFKA_API_TOKEN": "t"}); err == nil || !strings.Contains(err.Error(), "SOARKAFKA_SECRET_KEY") {
		t.Errorf("without SOARKAFKA_SECRET_KEY: %v, want an error naming it", err)
	}
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	const key, token = "a2V5LWtleS1rZXkta2V5LWtleS1rZXkta2V5LWtleSE=", "token-token-token-token"
	if err := interpolate(&root, map[string]string{"SOARKAFKA_SECRET_KEY": key, "SOARKAFKA_API_TOKEN": token}); err != nil {
		t.Fatalf("compose.yaml with the key and token set: %v", err)
	}
	var doc struct {
		Services map[string]svc `yaml:"services"`
	}
	if err := root.Decode(&doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}

	pg, ok := doc.Services["postgres"]
	if !ok || !strings.HasPrefix(pg.Image, "postgres:") || pg.Healthcheck == nil || !slices.Contains(pg.Healthcheck.Test, "pg_isready") {
		t.Errorf("postgres service %+v: want a postgres image with a pg_isready health check", pg)
	}
	kafka, ok := doc.Services["kafka"]
	if !ok || !strings.HasPrefix(kafka.Image, "apache/kafka:") || kafka.Healthcheck == nil || len(kafka.Healthcheck.Test) < 2 {
		t.Errorf("kafka service %+v: want an apache/kafka image with a health check", kafka)
	}
	if kafka.Environment["KAFKA_PROCESS_ROLES"] != "broker,controller" || !strings.Contains(kafka.Environment["KAFKA_ADVERTISED_LISTENERS"], "//kafka:9092") {
		t.Errorf("kafka environment %v: want one KRaft node (broker,controller) advertised as kafka:9092", kafka.Environment)
	}
	// The image formats its log directory with CLUSTER_ID, a UUID in
	// unpadded URL base64, and keeps it under /tmp unless told otherwise.
	if id, err := base64.RawURLEncoding.DecodeString(kafka.Environment["CLUSTER_ID"]); err != nil || len(id) != 16 {
		t.Errorf("kafka CLUSTER_ID %q: want 16 bytes in unpadded URL base64 (kafka-storage.sh random-uuid)", kafka.Environment["CLUSTER_ID"])
	}
	if dir := kafka.Environment["KAFKA_LOG_DIRS"]; !slices.ContainsFunc(kafka.Volumes, func(v string) bool { return strings.HasSuffix(v, ":"+dir) }) {
		t.Errorf("kafka KAFKA_LOG_DIRS %q is on no volume (%v): the topics would go with the container", dir, kafka.Volumes)
	}

	known := configEnv(t)
	var replicas []string
	hostPorts := map[string]string{}
	for name, s := range doc.Services {
		if s.Build == nil {
			continue
		}
		replicas = append(replicas, name)
		if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
			t.Errorf("%s: builds from %s/%s: %v", name, s.Build.Context, s.Build.Dockerfile, err)
		}
		for dep, cond := range map[string]string{"postgres": "service_healthy", "kafka": "service_healthy"} {
			if s.DependsOn[dep].Condition != cond {
				t.Errorf("%s: depends_on %s condition %q, want %s", name, dep, s.DependsOn[dep].Condition, cond)
			}
		}
		for k := range s.Environment {
			if !known[k] {
				t.Errorf("%s: environment %s is not a configuration key of the server", name, k)
			}
		}
		u, err := url.Parse(s.Environment["SOARKAFKA_DATABASE_URL"])
		if err != nil || u.Scheme != "postgres" || u.Hostname() != "postgres" {
			t.Errorf("%s: SOARKAFKA_DATABASE_URL %q: want postgres://...@postgres:5432/...", name, s.Environment["SOARKAFKA_DATABASE_URL"])
		}
		// The key and token are the ones given, the same on every replica.
		for k, want := range map[string]string{"SOARKAFKA_SECRET_KEY": key, "SOARKAFKA_API_TOKEN": token} {
			if s.Environment[k] != want {
				t.Errorf("%s: %s %q, want the %q given to compose", name, k, s.Environment[k], want)
			}
		}
		var env []string
		for k, v := range s.Environment {
			env = append(env, k+"="+v)
		}
		if _, err := app.LoadConfig("", nil, env); err != nil {
			t.Errorf("%s: the server refuses its environment: %v", name, err)
		}
		if s.Environment["SOARKAFKA_REPLICA_NAME"] != name {
			t.Errorf("%s: SOARKAFKA_REPLICA_NAME %q, want the service's name", name, s.Environment["SOARKAFKA_REPLICA_NAME"])
		}
		if len(s.Ports) != 1 || !strings.HasSuffix(s.Ports[0], ":8080") {
			t.Errorf("%s: ports %v, want one host port onto 8080", name, s.Ports)
			continue
		}
		if other, dup := hostPorts[s.Ports[0]]; dup {
			t.Errorf("%s and %s publish the same port %s", name, other, s.Ports[0])
		}
		hostPorts[s.Ports[0]] = name
		if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) {
			t.Errorf("%s: want read_only and cap_drop [ALL], as in the chart", name)
		}
		if s.Healthcheck == nil {
			t.Errorf("%s: no healthcheck", name)
		} else {
			checkReplicaHealthcheck(t, name, s.Healthcheck.Test, s.Healthcheck.Timeout)
		}
	}
	slices.Sort(replicas)
	if !slices.Equal(replicas, []string{"soarkafka-1", "soarkafka-2", "soarkafka-3"}) {
		t.Errorf("replicas built from the Dockerfile: %v, want soarkafka-1..3", replicas)
	}

	// Where docker compose is installed, it checks the file too; the
	// checks above stand without it.
	if docker, err := exec.LookPath("docker"); err == nil {
		if exec.Command(docker, "compose", "version").Run() == nil {
			cmd := exec.Command(docker, "compose", "-f", "compose.yaml", "config", "--quiet")
			cmd.Env = append(os.Environ(), "SOARKAFKA_SECRET_KEY=x", "SOARKAFKA_API_TOKEN=y")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("docker compose config: %v\n%s", err, out)
			}
		}
	}
}

// checkReplicaHealthcheck checks a replica's health check: the image's own
// binary (distroless: no shell, no curl) runs its healthcheck command, and
// compose waits longer than the command's own timeout.
func checkReplicaHealthcheck(t *testing.T, name string, test []string, timeout string) {
	t.Helper()
	const bin = "/usr/local/bin/soarkafka"
	if !slices.Equal(test, []string{"CMD", bin, "healthcheck"}) {
		t.Errorf("%s: healthcheck test %q, want [CMD %s healthcheck]", name, test, bin)
		return
	}
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^COPY .*\s` + regexp.QuoteMeta(bin) + `$`).Match(dockerfile) {
		t.Errorf("%s: the health check runs %s, which the Dockerfile does not copy the binary to", name, bin)
	}
	if cmd, rest, err := app.NewCommand(nil, io.Discard, io.Discard).Find(test[2:]); err != nil || len(rest) != 0 || cmd.Name() != "healthcheck" {
		t.Errorf("%s: healthcheck %v is not a soarkafka command: %v", name, test[2:], err)
	}
	if d, err := time.ParseDuration(timeout); err != nil || d <= app.DefaultHealthcheckTimeout {
		t.Errorf("%s: healthcheck timeout %q, want a duration over the command's own %s so that its reason is logged", name, timeout, app.DefaultHealthcheckTimeout)
	}
}

// interpolate replaces the variables in the string values of a compose
// file as compose does, from env: ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?error}, ${VAR?error}, and $$ for a dollar. An alias is the node it
// names, so each value is replaced once.
func interpolate(n *yaml.Node, env map[string]string) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode, yaml.MappingNode:
		for _, c := range n.Content {
			if err := interpolate(c, env); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		v, err := interpolateString(n.Value, env)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		n.Value = v
	}
	return nil
}

var composeVar = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

func interpolateString(s string, env map[string]string) (string, error) {
	var err error
	out := composeVar.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := composeVar.FindStringSubmatch(m)
		name, op, arg := sub[1], sub[2], sub[3]
		v, set := env[name]
		missing := !set || (strings.HasPrefix(op, ":") && v == "")
		switch {
		case !missing:
			return v
		case strings.HasSuffix(op, "-"):
			return arg
		case strings.HasSuffix(op, "?"):
			err = fmt.Errorf("required variable %s is missing a value: %s", name, arg)
		}
		return ""
	})
	return out, err
}
