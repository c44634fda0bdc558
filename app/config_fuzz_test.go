package app

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/viper"
)

// FuzzServerConfig feeds server configuration files (YAML or JSON) through
// LoadConfig: viper, the typed struct and validate. It never panics; a
// configuration it accepts is valid (validating it again changes nothing);
// a refusal starts with "config" and never quotes the value of a secret key
// (api_token, secret_key, the password of database_url).
func FuzzServerConfig(f *testing.F) {
	for _, seed := range []struct {
		content string
		json    bool
	}{
		{"listen: 127.0.0.1:1111\ndata_dir: /tmp/fromfile\ndev_broker:\n  addr: 127.0.0.1:1000\n  enabled: true\nlog_level: debug\n", false},
		{"api_token: short-secret\nsecret_key: not-a-key-secret\nmax_body_bytes: 10\nshutdown_timeout: -1s\n", false},
		{"api_token: [a-secret-in-a-list]\n", false},
		{"api_token: {nested: a-secret-in-a-map}\n", false},
		{"database_url: postgres://user:s3cret-pass@db:5432/x\n", false},
		{"database_url: mysql://user:s3cret-pass@db/x\nlisten: nowhere\n", false},
		{"database_url: \"postgres://user:s3cret-pass@db:port/x\"\n", false},
		{"parser:\n  memory_limit_mb: 1\n  timeout: 1ms\nscheduler: {enabled: maybe}\nmetrics: [1]\n", false},
		{"unknown_key: 1\nlog_format: xml\n", false},
		{"dev_broker: 7\n", false},
		{"listen: [\n", false},
		{"&a [*a]\n", false},
		{`{"listen":"127.0.0.1:0","replica_name":"r1","metrics":{"public":true}}`, true},
		{`{"api_token":123456789012345678901234567890}`, true},
		{`{"shutdown_timeout":"1h","dev_broker":{"partitions":0}}`, true},
		{`{`, true}, {``, true}, {``, false},
	} {
		f.Add([]byte(seed.content), seed.json)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte, isJSON bool) {
		name := filepath.Join(dir, "soarkafka.yaml")
		if isJSON {
			name = filepath.Join(dir, "soarkafka.json")
		}
		load := func(content []byte) (Config, error) {
			if err := os.WriteFile(name, content, 0o600); err != nil {
				t.Fatal(err)
			}
			return LoadConfig(name, nil, nil)
		}
		c, err := load(content)
		if err == nil {
			again := c
			if err := again.validate(); err != nil || !reflect.DeepEqual(again, c) {
				t.Fatalf("%q: accepted as %+v, but validating it again gives %+v, %v", content, c, again, err)
			}
			return
		}
		if !strings.HasPrefix(err.Error(), "config") {
			t.Fatalf("%q: error %q does not start with \"config\"", content, err)
		}
		// A secret is quoted if its text is in the message, and its
		// case-swapped twin is in the message for the file with the
		// secret swapped: a chance match would not follow the swap.
		for _, secret := range secretValues(name) {
			if !strings.Contains(err.Error(), secret) {
				continue
			}
			twin := swapCase(secret)
			_, err2 := load(bytes.ReplaceAll(content, []byte(secret), []byte(twin)))
			if err2 != nil && strings.Contains(err2.Error(), twin) {
				t.Fatalf("%q: error %q quotes the secret %q", content, err, secret)
			}
		}
	})
}

// secretValues reads the configuration file as viper does and returns the
// texts of its secret keys that are long enough to be told from a word of
// a message and have letters to swap: every string inside api_token and
// secret_key whatever their shape, and the password of database_url.
func secretValues(file string) []string {
	v := viper.New()
	v.SetConfigFile(file)
	if v.ReadInConfig() != nil {
		return nil
	}
	var out []string
	var walk func(x any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case nil:
		default:
			s := strings.TrimSpace(fmt.Sprint(x))
			if len(s) >= 8 && swapCase(s) != s {
				out = append(out, s)
			}
		}
	}
	walk(v.Get("api_token"))
	walk(v.Get("secret_key"))
	if s, ok := v.Get("database_url").(string); ok {
		if _, rest, ok := strings.Cut(s, "://"); ok {
			if userinfo, _, ok := strings.Cut(rest, "@"); ok {
				if _, pass, ok := strings.Cut(userinfo, ":"); ok {
					walk(pass)
				}
			}
		}
	}
	return out
}

func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsUpper(r) {
			return unicode.ToLower(r)
		}
		return unicode.ToUpper(r)
	}, s)
}
