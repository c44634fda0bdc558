package integrations_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"go.yaml.in/yaml/v3"

	"github.com/soarkafka/soarkafka/app"
	"github.com/soarkafka/soarkafka/integrations"
)

// untar returns the files of a .tgz by name, and its folders.
func untar(t *testing.T, b []byte) (map[string][]byte, []string) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	var dirs []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			dirs = append(dirs, strings.TrimSuffix(h.Name, "/"))
		case tar.TypeReg:
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = body
		default:
			t.Errorf("%s: tar entry type %c; only files and folders belong in the app", h.Name, h.Typeflag)
		}
	}
	return files, dirs
}

const appJSON = `{
    "appid": "6a1b4f7e-0000-4000-8000-000000000000",
    "name": "soarkafka",
    "app_version": "1.0.0",
    "main_module": "soarkafka_connector.py",
    "pips": {"wheel": []}
}
`

// The Splunk SOAR .tgz holds one top folder with the app's files and
// nothing of its tests, caches or dotfiles; the app JSON's app_version is
// the build's x.y.z version, the rest of its text unchanged.
func TestSplunkSOARPackageLayout(t *testing.T) {
	fsys := fstest.MapFS{
		"splunk_soar/soarkafka.json":                        {Data: []byte(appJSON)},
		"splunk_soar/soarkafka_connector.py":                {Data: []byte("import phantom\n")},
		"splunk_soar/README.md":                             {Data: []byte("# soarkafka\n")},
		"splunk_soar/logos/soarkafka.svg":                   {Data: []byte("<svg/>")},
		"splunk_soar/.keep":                                 {},
		"splunk_soar/.DS_Store":                             {Data: []byte("x")},
		"splunk_soar/__pycache__/soarkafka.cpython-311.pyc": {Data: []byte("x")},
		"splunk_soar/tests/test_connector.py":               {Data: []byte("x")},
		"splunk_soar/test_connector.py":                     {Data: []byte("x")},
		"splunk_soar/connector_test.py":                     {Data: []byte("x")},
		"splunk_soar/logos/.hidden/x.svg":                   {Data: []byte("x")},
		"xsoar/SoarKafka.py":                                {Data: []byte("x")},
	}
	var buf bytes.Buffer
	if err := integrations.WriteSplunkSOARPackage(fsys, &buf, "v2.3.4"); err != nil {
		t.Fatal(err)
	}
	files, dirs := untar(t, buf.Bytes())
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{"soarkafka/README.md", "soarkafka/logos/soarkafka.svg", "soarkafka/soarkafka.json", "soarkafka/soarkafka_connector.py"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	slices.Sort(dirs)
	if !slices.Equal(dirs, []string{"soarkafka", "soarkafka/logos"}) {
		t.Fatalf("folders %v", dirs)
	}
	if got, want := string(files["soarkafka/soarkafka.json"]), strings.Replace(appJSON, `"1.0.0"`, `"2.3.4"`, 1); got != want {
		t.Fatalf("app JSON:\n%s\nwant\n%s", got, want)
	}
	if string(files["soarkafka/soarkafka_connector.py"]) != "import phantom\n" {
		t.Fatal("connector changed")
	}

	// A version SOAR would not take leaves the JSON's own.
	buf.Reset()
	if err := integrations.WriteSplunkSOARPackage(fsys, &buf, "dev"); err != nil {
		t.Fatal(err)
	}
	files, _ = untar(t, buf.Bytes())
	if string(files["soarkafka/soarkafka.json"]) != appJSON {
		t.Fatalf("app JSON changed for version dev:\n%s", files["soarkafka/soarkafka.json"])
	}
	// The same sources and version give the same bytes.
	var again bytes.Buffer
	if err := integrations.WriteSplunkSOARPackage(fsys, &again, "dev"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatal("two builds of the same sources differ")
	}

	// No app files: an error that says so, not an empty archive.
	err := integrations.WriteSplunkSOARPackage(fstest.MapFS{"splunk_soar/.keep": {}}, io.Discard, "1.0.0")
	if err == nil || !strings.Contains(err.Error(), "splunk_soar/ holds no app files") {
		t.Fatalf("empty sources: %v", err)
	}
}

// splunkSources lists the app files of the embedded splunk_soar/ as the
// package should hold them (top folder prefixed); empty while the app's
// sources are not in this tree.
func splunkSources(t *testing.T) map[string]bool {
	t.Helper()
	want := map[string]bool{}
	err := fs.WalkDir(integrations.Sources(), "splunk_soar", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		parts := strings.Split(p, "/")
		for _, part := range parts[1:] {
			if strings.HasPrefix(part, ".") || part == "__pycache__" || part == "tests" {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), "test_") && !strings.HasSuffix(d.Name(), "_test.py") && !strings.HasSuffix(d.Name(), ".pyc") {
			want[path.Join(integrations.SplunkSOARTopDir, strings.TrimPrefix(p, "splunk_soar/"))] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// The package built from the sources in this binary: every app file under
// the one top folder, byte for byte (the app JSON aside, whose version the
// build sets), and nothing else.
func TestSplunkSOARPackageEmbedded(t *testing.T) {
	want := splunkSources(t)
	var buf bytes.Buffer
	err := integrations.SplunkSOARPackage(&buf, "1.2.3")
	if len(want) == 0 {
		t.Fatal("the binary embeds no Splunk SOAR app sources (integrations/splunk_soar/)")
	}
	if err != nil {
		t.Fatal(err)
	}
	files, _ := untar(t, buf.Bytes())
	for name, body := range files {
		if !want[name] {
			t.Errorf("%s is in the package but is not an app file", name)
			continue
		}
		src, err := fs.ReadFile(integrations.Sources(), "splunk_soar/"+strings.TrimPrefix(name, integrations.SplunkSOARTopDir+"/"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".json") && path.Dir(name) == integrations.SplunkSOARTopDir {
			var doc map[string]any
			if json.Unmarshal(body, &doc) != nil {
				t.Errorf("%s is no longer JSON", name)
			} else if doc["appid"] != nil && doc["app_version"] != "1.2.3" {
				t.Errorf("%s: app_version %v, want 1.2.3", name, doc["app_version"])
			}
			continue
		}
		if !bytes.Equal(body, src) {
			t.Errorf("%s differs from its source", name)
		}
	}
	for name := range want {
		if _, ok := files[name]; !ok {
			t.Errorf("%s is missing from the package", name)
		}
	}
}

// The unified YAML keeps the split YAML as written, comments included, and
// refuses sources it cannot embed readably, naming the fix.
func TestXSOARIntegrationFromSources(t *testing.T) {
	yml := "# soarkafka\ncommonfields:\n  id: X\nname: X\nscript:\n  script: '-'  # filled by the build\n  type: python\n  subtype: python3\n"
	py := "import demistomock as demisto  # noqa\nfrom CommonServerPython import *\n\ndef main():\n    demisto.results('ok')\n"
	var buf bytes.Buffer
	if err := integrations.WriteXSOARIntegration(fstest.MapFS{
		"xsoar/SoarKafka.yml": {Data: []byte(yml)}, "xsoar/SoarKafka.py": {Data: []byte(py)},
	}, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "# soarkafka\n") {
		t.Errorf("comment lost:\n%s", buf.String())
	}
	var doc struct {
		Script struct{ Script, Type string }
	}
	if err := yaml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if want := "\n\n\ndef main():\n    demisto.results('ok')\n"; doc.Script.Script != want || doc.Script.Type != "python" {
		t.Fatalf("script %q type %q, want %q", doc.Script.Script, doc.Script.Type, want)
	}

	for _, tt := range []struct{ yml, py, msg string }{
		{"name: X\n", py, "has no script mapping"},
		{"script:\n  type: python\n", py, "has no script.script"},
		{yml, "x = 1  \n", "tabs or trailing spaces"},
		{"script: [\n", py, "SoarKafka.yml"},
	} {
		err := integrations.WriteXSOARIntegration(fstest.MapFS{
			"xsoar/SoarKafka.yml": {Data: []byte(tt.yml)}, "xsoar/SoarKafka.py": {Data: []byte(tt.py)},
		}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%q: %v, want an error with %q", tt.yml, err, tt.msg)
		}
	}
}

// `soarkafka integrations build --out DIR` writes both packages, as the
// library builds them.
func TestIntegrationsBuildCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	var out, errOut bytes.Buffer
	code := app.Main(context.Background(), []string{"integrations", "build", "--out", dir}, nil, &out, &errOut)

	var xsoar bytes.Buffer
	if err := integrations.XSOARIntegration(&xsoar); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, integrations.XSOARFileName))
	if err != nil {
		t.Fatalf("%v (stdout %q, stderr %q)", err, out.String(), errOut.String())
	}
	if !bytes.Equal(got, xsoar.Bytes()) {
		t.Error("soarkafka-xsoar.yml is not the integration XSOARIntegration builds")
	}

	splunkName := filepath.Join(dir, integrations.SplunkSOARFileName(app.Version()))
	if len(splunkSources(t)) == 0 {
		t.Fatal("the binary embeds no Splunk SOAR app sources (integrations/splunk_soar/)")
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var splunk bytes.Buffer
	if err := integrations.SplunkSOARPackage(&splunk, app.Version()); err != nil {
		t.Fatal(err)
	}
	got, err = os.ReadFile(splunkName)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, splunk.Bytes()) {
		t.Error("the .tgz is not the package SplunkSOARPackage builds")
	}
	if !strings.Contains(out.String(), splunkName) || !strings.Contains(out.String(), integrations.XSOARFileName) {
		t.Errorf("stdout %q does not name both files", out.String())
	}
}

// The server serves both packages under the API token, as attachments with
// their content types.
func TestIntegrationRoutes(t *testing.T) {
	srv := startServer(t)
	get := func(path, token string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("ph-auth-token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	for _, p := range []string{"/v1/integrations/xsoar.yml", "/v1/integrations/splunk-soar.tgz"} {
		for _, tok := range []string{"", "wrong-token-0123456789"} {
			if resp, _ := get(p, tok); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s with token %q: %d, want 401", p, tok, resp.StatusCode)
			}
		}
	}
	attachment := func(resp *http.Response) string {
		d, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
		if err != nil || d != "attachment" {
			t.Errorf("Content-Disposition %q", resp.Header.Get("Content-Disposition"))
		}
		return params["filename"]
	}

	resp, body := get("/v1/integrations/xsoar.yml", srv.Token)
	var want bytes.Buffer
	if err := integrations.XSOARIntegration(&want); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(body, want.Bytes()) {
		t.Fatalf("xsoar.yml: %d %s, body equal %v", resp.StatusCode, resp.Header.Get("Content-Type"), bytes.Equal(body, want.Bytes()))
	}
	if name := attachment(resp); name != integrations.XSOARFileName {
		t.Errorf("xsoar.yml offered as %q", name)
	}

	resp, body = get("/v1/integrations/splunk-soar.tgz", srv.Token)
	if len(splunkSources(t)) == 0 {
		t.Fatal("the binary embeds no Splunk SOAR app sources (integrations/splunk_soar/)")
	}
	// The server process is this test binary: same sources, same version.
	want.Reset()
	if err := integrations.SplunkSOARPackage(&want, app.Version()); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/gzip" || !bytes.Equal(body, want.Bytes()) {
		t.Fatalf("splunk-soar.tgz: %d %s, body equal %v", resp.StatusCode, resp.Header.Get("Content-Type"), bytes.Equal(body, want.Bytes()))
	}
	if name := attachment(resp); name != integrations.SplunkSOARFileName(app.Version()) {
		t.Errorf("splunk-soar.tgz offered as %q", name)
	}
	files, _ := untar(t, body)
	for name := range files {
		if !strings.HasPrefix(name, integrations.SplunkSOARTopDir+"/") {
			t.Errorf("%s is outside the one top folder", name)
		}
	}
}
