package integrations

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// sources are the apps' source trees as committed. The "all:" prefix keeps
// files whose names start with "_" (__init__.py); dotfiles are embedded too
// and left out of the packages by packaged.
//
//go:embed all:splunk_soar all:xsoar
var sources embed.FS

// Sources returns the embedded source trees: splunk_soar/ and xsoar/.
func Sources() fs.FS { return sources }

// SplunkSOARTopDir is the one top folder of the Splunk SOAR app's .tgz:
// SOAR's app install unpacks the archive and expects the app in a single
// folder.
const SplunkSOARTopDir = "soarkafka"

// XSOARFileName is the unified integration's file name, as the build
// command writes it and the server offers it.
const XSOARFileName = "soarkafka-xsoar.yml"

// SplunkSOARFileName is the Splunk SOAR app's file name for a version.
func SplunkSOARFileName(version string) string {
	return "soarkafka-splunk-soar-" + version + ".tgz"
}

// packageTime is the modification time written into the archive, so that
// the same sources and version give the same bytes.
var packageTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// SplunkSOARPackage writes the installable Splunk SOAR app, built from the
// embedded sources, as a gzipped tar.
func SplunkSOARPackage(w io.Writer, version string) error {
	return WriteSplunkSOARPackage(sources, w, version)
}

// XSOARIntegration writes the unified Cortex XSOAR integration YAML built
// from the embedded sources.
func XSOARIntegration(w io.Writer) error {
	return WriteXSOARIntegration(sources, w)
}

// WriteSplunkSOARPackage writes fsys's splunk_soar/ tree as a gzipped tar
// under the one top folder SplunkSOARTopDir. Tests, __pycache__, compiled
// Python and dotfiles are left out: they are not part of the app. The app
// JSON's app_version is set to version when version is a plain x.y.z (a
// leading v dropped), SOAR's own form; otherwise the JSON keeps its own.
func WriteSplunkSOARPackage(fsys fs.FS, w io.Writer, version string) error {
	const root = "splunk_soar"
	var files []string
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if !packaged(d.Name(), d.IsDir()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("splunk soar package: read sources: %w", err)
	}
	if len(files) == 0 {
		return errors.New("splunk soar package: splunk_soar/ holds no app files")
	}
	gz := gzip.NewWriter(w)
	gz.ModTime = packageTime
	tw := tar.NewWriter(gz)
	dirs := map[string]bool{}
	writeDir := func(name string) error {
		if dirs[name] {
			return nil
		}
		dirs[name] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: packageTime})
	}
	if err := writeDir(SplunkSOARTopDir); err != nil {
		return fmt.Errorf("splunk soar package: %w", err)
	}
	for _, p := range files {
		rel := strings.TrimPrefix(p, root+"/")
		name := path.Join(SplunkSOARTopDir, rel)
		// Parent folders first, as tar readers that create them expect.
		if err := writeParents(writeDir, SplunkSOARTopDir, rel); err != nil {
			return fmt.Errorf("splunk soar package: %w", err)
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("splunk soar package: %w", err)
		}
		if path.Dir(rel) == "." && strings.HasSuffix(rel, ".json") {
			b = withAppVersion(b, version)
		}
		mode := int64(0o644)
		if strings.HasSuffix(rel, ".sh") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(b)), ModTime: packageTime}); err != nil {
			return fmt.Errorf("splunk soar package: %s: %w", name, err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("splunk soar package: %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("splunk soar package: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("splunk soar package: %w", err)
	}
	return nil
}

// writeParents writes the folders between top and rel's file, outermost
// first.
func writeParents(writeDir func(string) error, top, rel string) error {
	var parents []string
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		parents = append([]string{dir}, parents...)
	}
	for _, dir := range parents {
		if err := writeDir(path.Join(top, dir)); err != nil {
			return err
		}
	}
	return nil
}

// packaged says whether a file or folder of an app's source belongs in its
// package: dotfiles, Python caches and tests do not.
func packaged(name string, dir bool) bool {
	switch {
	case strings.HasPrefix(name, "."):
		return false
	case dir:
		return name != "__pycache__" && name != "tests" && name != "test"
	case strings.HasSuffix(name, ".pyc"), strings.HasSuffix(name, ".pyo"):
		return false
	case strings.HasSuffix(name, ".py") && (strings.HasPrefix(name, "test_") || strings.HasSuffix(name, "_test.py")):
		return false
	case name == "conftest.py":
		return false
	}
	return true
}

var (
	appVersionMember = regexp.MustCompile(`("app_version"\s*:\s*)"[^"\\]*"`)
	plainVersion     = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
)

// withAppVersion sets the app JSON's top-level app_version to version by
// replacing the member's value in the text, so the file keeps its layout.
// It leaves b as it was when b is not an app JSON (no appid), when version
// is not x.y.z, or when the edit would not give the JSON with exactly that
// change.
func withAppVersion(b []byte, version string) []byte {
	version = strings.TrimPrefix(version, "v")
	if !plainVersion.MatchString(version) {
		return b
	}
	var before map[string]any
	if json.Unmarshal(b, &before) != nil || before["appid"] == nil {
		return b
	}
	if locs := appVersionMember.FindAllIndex(b, -1); len(locs) != 1 {
		return b
	}
	out := appVersionMember.ReplaceAll(b, []byte(`${1}"`+version+`"`))
	var after map[string]any
	if json.Unmarshal(out, &after) != nil || after["app_version"] != version {
		return b
	}
	before["app_version"] = version
	x, _ := json.Marshal(before)
	y, _ := json.Marshal(after)
	if !bytes.Equal(x, y) {
		return b
	}
	return out
}

// XSOARSource and XSOARScript are the integration's split sources under
// xsoar/, as demisto content keeps an integration: the YAML with
// script.script "-", and the Python beside it.
const (
	XSOARSource = "xsoar/SoarKafka.yml"
	XSOARScript = "xsoar/SoarKafka.py"
)

// platformImports are the lines demisto-sdk's unifier removes from a
// Python integration (clean_python_code): XSOAR runs the script with
// demisto and CommonServerPython's names already defined, and neither
// module can be imported there. Each line is blanked, not deleted, so a
// traceback's line numbers are SoarKafka.py's.
var platformImports = regexp.MustCompile(`(?m)^(import demistomock as demisto|from CommonServerPython import \*|from CommonServerUserPython import \*)[ \t]*(#.*)?$`)

// UnifiedScript is the Python as the unified YAML embeds it: py with the
// platform import lines blanked.
func UnifiedScript(py string) string {
	return platformImports.ReplaceAllString(py, "")
}

// WriteXSOARIntegration writes the unified integration YAML: fsys's
// XSOARSource with script.script set to XSOARScript (see UnifiedScript),
// the rest of the document as written, comments included.
func WriteXSOARIntegration(fsys fs.FS, w io.Writer) error {
	src, err := fs.ReadFile(fsys, XSOARSource)
	if err != nil {
		return fmt.Errorf("xsoar integration: %w", err)
	}
	py, err := fs.ReadFile(fsys, XSOARScript)
	if err != nil {
		return fmt.Errorf("xsoar integration: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return fmt.Errorf("xsoar integration: %s: %w", XSOARSource, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("xsoar integration: %s is not a YAML mapping", XSOARSource)
	}
	script := mappingValue(doc.Content[0], "script")
	if script == nil || script.Kind != yaml.MappingNode {
		return fmt.Errorf("xsoar integration: %s has no script mapping (script: {type: python, script: '-'})", XSOARSource)
	}
	body := mappingValue(script, "script")
	if body == nil {
		return fmt.Errorf("xsoar integration: %s has no script.script to fill (write script: '-')", XSOARSource)
	}
	code := UnifiedScript(string(py))
	if strings.ContainsAny(code, "\t") || trailingSpace.MatchString(code) {
		// YAML's literal block cannot hold these and the encoder would
		// fall back to a quoted string: valid, but unreadable in XSOAR's
		// script editor.
		return fmt.Errorf("xsoar integration: %s has tabs or trailing spaces; remove them", XSOARScript)
	}
	*body = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: code, Style: yaml.LiteralStyle}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("xsoar integration: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("xsoar integration: encode: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

var trailingSpace = regexp.MustCompile(`(?m)[ \t]+$`)

// mappingValue returns the value node of key in mapping m, nil when absent.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
