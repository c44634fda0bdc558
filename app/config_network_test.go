package app

import (
	"slices"
	"strings"
	"testing"
)

// The list keys read from a YAML list, a comma-separated environment
// variable, or repeated or comma-separated flags; bad entries are refused
// at start with the key named.
func TestConfigAccessLists(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, "network:\n  denied_hosts: [169.254.169.254, \"127.0.0.0/8\"]\nfiles:\n  allowed_dirs:\n    - "+dir+"\n")
	c, err := LoadConfig(file, flags(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Network.DeniedHosts, []string{"169.254.169.254", "127.0.0.0/8"}) || !slices.Equal(c.Files.AllowedDirs, []string{dir}) {
		t.Fatalf("file: %+v %+v", c.Network, c.Files)
	}
	access, err := c.Access()
	if err != nil || access.Hosts == nil || access.Files == nil {
		t.Fatalf("access: %+v %v", access, err)
	}

	c, err = LoadConfig("", flags(t), []string{"SOARKAFKA_NETWORK_ALLOWED_HOSTS=kafka1.corp:9092, *.kafka.corp ,10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Network.AllowedHosts, []string{"kafka1.corp:9092", "*.kafka.corp", "10.0.0.0/8"}) {
		t.Fatalf("env: %q", c.Network.AllowedHosts)
	}

	c, err = LoadConfig("", flags(t, "--network-denied-hosts=[::1]:9092,10.0.0.0/8:22", "--network-denied-hosts=metadata.internal"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Network.DeniedHosts, []string{"[::1]:9092", "10.0.0.0/8:22", "metadata.internal"}) {
		t.Fatalf("flags: %q", c.Network.DeniedHosts)
	}

	// Defaults: every host, no file path.
	c, err = LoadConfig("", flags(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if access, err := c.Access(); err != nil || access.Hosts != nil || access.Files != nil {
		t.Fatalf("default access: %+v %v", access, err)
	}

	_, err = LoadConfig("", flags(t, "--network-allowed-hosts=kafka:99999", "--files-allowed-dirs=relative/dir"), nil)
	for _, want := range []string{`network.allowed_hosts: "kafka:99999": port "99999" must be a number from 1 to 65535`, `files.allowed_dirs: "relative/dir" is not an absolute path`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
}
