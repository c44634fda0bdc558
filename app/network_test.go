package app

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// networkServer starts a server with the dev broker and extra flags, and
// returns its base URL, its API token and the dev broker's address.
func networkServer(t *testing.T, extra ...string) (base, token, broker string) {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"--listen=127.0.0.1:0", "--data-dir=" + dir, "--dev-broker", "--dev-broker-addr=127.0.0.1:0",
		"--shutdown-timeout=5s", "--api-token=network-test-token-0123", "--scheduler-enabled=false"}, extra...)
	cfg, err := LoadConfig("", flags(t, args...), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ := startServer(t, cfg)
	return "http://" + s.Addr(), cfg.APIToken, s.BrokerAddr()
}

// rawCall sends a request and returns the status and the body as sent.
func rawCall(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("ph-auth-token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// createAsset stores an asset with the configuration given.
func createAsset(t *testing.T, base, token, name string, cfg map[string]any) {
	t.Helper()
	if code, body := rawCall(t, "POST", base+"/v1/assets", token, mustJSON(map[string]any{"name": name, "config": cfg})); code != 201 {
		t.Fatalf("create asset %s: %d %s", name, code, body)
	}
}

// everyDial runs what dials an asset's brokers (test connectivity, post
// data, on poll, the parser playground's live sample) and returns each
// answer's body by name.
func everyDial(t *testing.T, base, token, asset string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_, out["test_connectivity"] = rawCall(t, "POST", base+"/v1/actions/test_connectivity", token, mustJSON(map[string]any{"asset": asset}))
	_, out["post_data"] = rawCall(t, "POST", base+"/v1/actions/post_data", token, mustJSON(map[string]any{"asset": asset,
		"parameters": map[string]any{"data_type": "string", "data": "x", "topic": "alerts", "timeout": 5}}))
	_, out["on_poll"] = rawCall(t, "POST", base+"/v1/actions/on_poll", token, mustJSON(map[string]any{"asset": asset, "parameters": map[string]any{}}))
	_, out["sample"] = rawCall(t, "POST", base+"/v1/parsers/test", token, mustJSON(map[string]any{"parser": "default", "asset": asset, "sample": map[string]any{"count": 1}}))
	return out
}

// network.denied_hosts and network.allowed_hosts refuse every dial of an
// asset, and the refusal names the broker and the setting.
func TestServerNetworkPolicyRefusesEveryDial(t *testing.T) {
	t.Parallel()
	t.Run("denied", func(t *testing.T) {
		t.Parallel()
		base, token, broker := networkServer(t, "--network-denied-hosts=169.254.169.254,127.0.0.0/8", "--network-denied-hosts=::1")
		_, port, _ := net.SplitHostPort(broker)
		createAsset(t, base, token, "by-address", map[string]any{"hosts": broker, "topic": "alerts", "timeout": 3000})
		createAsset(t, base, token, "by-name", map[string]any{"hosts": "localhost:" + port, "topic": "alerts", "timeout": 3000})
		for what, body := range everyDial(t, base, token, "by-address") {
			if want := "broker " + broker + ": not allowed by network.denied_hosts"; !strings.Contains(body, want) {
				t.Errorf("%s: %s\nwant it to say %q", what, body, want)
			}
		}
		// A name that resolves to a denied address is refused too.
		for what, body := range everyDial(t, base, token, "by-name") {
			if !strings.Contains(body, "broker localhost:"+port+" (address ") || !strings.Contains(body, "): not allowed by network.denied_hosts") {
				t.Errorf("%s: %s\nwant the resolved address refused by network.denied_hosts", what, body)
			}
		}
	})
	t.Run("not allowed", func(t *testing.T) {
		t.Parallel()
		base, token, broker := networkServer(t, "--network-allowed-hosts=10.0.0.0/8:9092,*.kafka.corp")
		createAsset(t, base, token, "dev", map[string]any{"hosts": broker, "topic": "alerts", "timeout": 3000})
		for what, body := range everyDial(t, base, token, "dev") {
			if want := "broker " + broker + ": not allowed by network.allowed_hosts"; !strings.Contains(body, want) {
				t.Errorf("%s: %s\nwant it to say %q", what, body, want)
			}
		}
	})
	t.Run("allowed", func(t *testing.T) {
		t.Parallel()
		base, token, broker := networkServer(t, "--network-allowed-hosts=127.0.0.1", "--network-denied-hosts=169.254.169.254")
		createAsset(t, base, token, "dev", map[string]any{"hosts": broker, "topic": "alerts", "timeout": 3000})
		code, body := rawCall(t, "POST", base+"/v1/actions/post_data", token, mustJSON(map[string]any{"asset": "dev",
			"parameters": map[string]any{"data_type": "string", "data": "x", "topic": "alerts", "timeout": 5}}))
		if code != 200 || !strings.Contains(body, `"status":"success"`) {
			t.Errorf("post data to an allowed broker: %d %s", code, body)
		}
	})
}

// A port that is not Kafka fails with "not a Kafka broker", and nothing
// the service behind it said reaches the answer, not even as a number.
func TestServerNonKafkaPortLeaksNothing(t *testing.T) {
	t.Parallel()
	addr := testenv.ServeTCP(t, func(c net.Conn) {
		c.Write([]byte("INFO {\"server_id\":\"NATSBANNER\",\"version\":\"2.10.0\"}\r\n"))
		io.Copy(io.Discard, c)
	})
	base, token, _ := networkServer(t)
	createAsset(t, base, token, "nats", map[string]any{"hosts": addr, "topic": "alerts", "timeout": 2000})
	answers := everyDial(t, base, token, "nats")
	for what, body := range answers {
		for _, leak := range []string{"1229866575", "INFO", "NATSBANNER", "2.10.0"} {
			if strings.Contains(body, leak) {
				t.Errorf("%s: the answer holds %q from the peer: %s", what, leak, body)
			}
		}
	}
	if want := "broker " + addr + ": not a Kafka broker"; !strings.Contains(answers["test_connectivity"], want) {
		t.Errorf("test connectivity: %s\nwant %q", answers["test_connectivity"], want)
	}
	for _, what := range []string{"on_poll", "sample", "post_data"} {
		if !strings.Contains(answers[what], "not a Kafka broker") {
			t.Errorf("%s: %s\nwant it to say not a Kafka broker", what, answers[what])
		}
	}
}

// A TLS asset pointed at a plaintext port fails within its timeout, and
// says the port does not speak TLS.
func TestServerTLSAssetOnPlaintextPort(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLSCerts(t)
	ca, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	base, token, broker := networkServer(t)
	const timeout = 2 * time.Second
	createAsset(t, base, token, "tls", map[string]any{"hosts": broker, "topic": "alerts", "use_ssl": true, "ca_pem": string(ca), "timeout": timeout.Milliseconds()})
	for _, action := range []string{"test_connectivity", "on_poll"} {
		start := time.Now()
		_, body := rawCall(t, "POST", base+"/v1/actions/"+action, token, mustJSON(map[string]any{"asset": "tls", "parameters": map[string]any{}}))
		if took := time.Since(start); took > 3*timeout {
			t.Errorf("%s took %s with the asset's timeout %s", action, took, timeout)
		}
		if !strings.Contains(body, "the broker does not speak TLS on this port (use security_protocol PLAINTEXT with use_ssl false, or the broker's TLS port)") {
			t.Errorf("%s: %s\nwant it to say the broker does not speak TLS", action, body)
		}
		if !strings.Contains(body, broker) {
			t.Errorf("%s: %s\nwant it to name the broker", action, body)
		}
	}
}

// Every path that cannot be used answers alike through the actions:
// /etc/shadow, a missing file, a link out of the allowed directory, a
// .. escape.
func TestServerFilePathsAnswerAlike(t *testing.T) {
	t.Parallel()
	allowed := t.TempDir()
	outside := t.TempDir()
	secret := filepath.Join(outside, "ca.pem")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(allowed, "link.pem")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	base, token, broker := networkServer(t, "--files-allowed-dirs="+allowed)
	paths := []string{"/etc/shadow", filepath.Join(allowed, "missing.pem"), link, allowed + "/../" + filepath.Base(outside) + "/ca.pem"}
	var answers []string
	for i, p := range paths {
		name := "files-" + string(rune('a'+i))
		createAsset(t, base, token, name, map[string]any{"hosts": broker, "topic": "alerts", "use_ssl": true, "ca_cert": p})
		_, body := rawCall(t, "POST", base+"/v1/actions/test_connectivity", token, mustJSON(map[string]any{"asset": name}))
		if want := "ca_cert: file " + p + " cannot be used: it is missing, unreadable, or outside files.allowed_dirs"; !strings.Contains(body, want) {
			t.Errorf("ca_cert %s: %s\nwant %q", p, body, want)
		}
		body = strings.ReplaceAll(body, p, "<path>")
		// Durations differ from run to run; nothing else may.
		var res map[string]any
		json.Unmarshal([]byte(body), &res)
		delete(res, "duration_ms")
		answers = append(answers, mustJSON(map[string]any{"status": res["status"], "message": res["message"], "data": res["data"]}))
	}
	for i := 1; i < len(answers); i++ {
		if answers[i] != answers[0] {
			t.Errorf("%s answers\n%s\nbut %s answers\n%s", paths[i], answers[i], paths[0], answers[0])
		}
	}
}
