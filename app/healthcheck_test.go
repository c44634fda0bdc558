package app

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// `soarkafka healthcheck` against a running server: 0 at its listen
// address (from the environment, as the server reads it) and at --url; 1
// with one line saying why on a path that does not answer 200 and on a
// closed port.
func TestHealthcheckCommand(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartSoarkafka(t, exe)
	listen := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := net.SplitHostPort(listen)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	// A port that accepts and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	for _, tc := range []struct {
		name   string
		args   []string
		env    []string
		code   int
		output string // in stdout when code is 0, stderr otherwise
	}{
		{"listen from the environment", nil, []string{"SOARKAFKA_LISTEN=" + listen}, 0, srv.URL + "/healthz: ok"},
		{"every address is reached on loopback", nil, []string{"SOARKAFKA_LISTEN=0.0.0.0:" + port}, 0, "http://127.0.0.1:" + port + "/healthz: ok"},
		{"--url", []string{"--url", srv.URL + "/healthz"}, nil, 0, "/healthz: ok"},
		{"not 200", []string{"--url", srv.URL + "/v1/assets"}, nil, 1, "401 Unauthorized, want 200 OK"},
		{"closed port", nil, []string{"SOARKAFKA_LISTEN=" + closed}, 1, "connection refused"},
		{"no answer", []string{"--timeout", "200ms", "--url", "http://" + silent.Addr().String() + "/healthz"}, nil, 1, "no answer within the timeout"},
		{"bad listen", nil, []string{"SOARKAFKA_LISTEN=nope"}, 1, `listen: "nope" is not host:port`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			env := append([]string{"SOARKAFKA_DATA_DIR=" + t.TempDir()}, tc.env...)
			code := Main(context.Background(), append([]string{"healthcheck"}, tc.args...), env, &out, &errOut)
			got := out.String()
			if code != 0 {
				got = errOut.String()
			}
			if code != tc.code || !strings.Contains(got, tc.output) {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q; want %q", code, tc.code, out.String(), errOut.String(), tc.output)
			}
			if code != 0 && strings.Count(errOut.String(), "\n") != 1 {
				t.Fatalf("the reason is not one line: %q", errOut.String())
			}
		})
	}
}
