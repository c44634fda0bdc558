package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// DefaultHealthcheckTimeout bounds `soarkafka healthcheck`: well under the
// interval a container runtime checks at, and long enough for a server
// busy with a page load.
const DefaultHealthcheckTimeout = 3 * time.Second

// healthcheckCommand is `soarkafka healthcheck`: GET the server's /healthz
// and exit 0 on 200, 1 otherwise with one line saying why. It is for
// container runtimes (a compose healthcheck, a Kubernetes exec probe) in
// images that have no curl or wget: the binary checks itself.
func healthcheckCommand(configFile *string, env []string, out io.Writer) *cobra.Command {
	var (
		url     string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "GET the server's /healthz (at its listen address, or --url); exit 0 on 200, 1 otherwise",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout: %s is not a positive duration", timeout)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if url == "" {
				// The server's own rules: --config file, SOARKAFKA_LISTEN,
				// the default.
				cfg, err := LoadConfig(*configFile, nil, env)
				if err != nil {
					return oneLine(fmt.Errorf("healthcheck: %w (or give --url)", err))
				}
				url = "http://" + dialable(cfg.Listen) + "/healthz"
			}
			if err := getHealthz(ctx, url); err != nil {
				return oneLine(err)
			}
			fmt.Fprintf(out, "%s: ok\n", url)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "URL to GET (default: http://<listen>/healthz, listen as the server reads it)")
	cmd.Flags().DurationVar(&timeout, "timeout", DefaultHealthcheckTimeout, "give up and exit 1 after this long")
	return cmd
}

// getHealthz GETs url and says why when the answer is not 200.
func getHealthz(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	// A client of its own: no proxy from the environment stands between
	// a container and its own port.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("GET %s: no answer within the timeout: %w", url, err)
		}
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s, want 200 OK", url, resp.Status)
	}
	return nil
}

// dialable turns a listen address into one to connect to: a server
// listening on every address (":8080", "0.0.0.0:8080", "[::]:8080") is
// reached on loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen // validated with the configuration
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		if ip.Is4() {
			return net.JoinHostPort("127.0.0.1", port)
		}
		return net.JoinHostPort("::1", port)
	}
	return listen
}

// oneLine keeps a reason on one line, as a container runtime's health log
// shows it.
func oneLine(err error) error {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	return errors.New(msg)
}
