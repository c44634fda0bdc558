package app

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServerKeepsConsoleSessions: the server keeps console sessions in its
// store, so a session outlives a restart (as it is seen by another
// replica on the same database), and sign-out ends it there.
func TestServerKeepsConsoleSessions(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s, cancel, done := startServer(t, cfg)
	b, err := os.ReadFile(filepath.Join(dir, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	do := func(method, rawURL string, form url.Values, cookies ...*http.Cookie) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, rawURL, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	cookie := func(resp *http.Response, name string) *http.Cookie {
		for _, ck := range resp.Cookies() {
			if ck.Name == name {
				return ck
			}
		}
		t.Fatalf("no %s cookie in %v", name, resp.Header)
		return nil
	}

	base := "http://" + s.Addr()
	resp, page := do("GET", base+"/signin", nil)
	m := csrf.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf in the sign-in form: %s", page)
	}
	resp, _ = do("POST", base+"/signin", url.Values{"csrf": {m[1]}, "secret": {token}}, cookie(resp, "soarkafka_signin"))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	session := cookie(resp, "soarkafka_session")

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // the cleanup reads done once more
	s2, _, _ := startServer(t, cfg)
	base = "http://" + s2.Addr()
	resp, page = do("GET", base+"/integrations", nil, session)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the session after a restart: %d to %q, want the page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if m = csrf.FindStringSubmatch(page); m == nil {
		t.Fatalf("no csrf on the page: %s", page)
	}
	if resp, _ = do("POST", base+"/signout", url.Values{"csrf": {m[1]}}, session); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	if resp, _ = do("GET", base+"/integrations", nil, session); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the signed-out session: %d, want the sign-in page", resp.StatusCode)
	}
}
