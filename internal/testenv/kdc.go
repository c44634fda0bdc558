package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// KDC is a throwaway MIT Kerberos realm for one test: its database,
// configuration and logs live in a t.TempDir(), and its krb5kdc listens on
// a free port of 127.0.0.1 (UDP and TCP) until Stop or the end of the test.
//
// Nothing outside the directory is read or written: the MIT programs run
// with KRB5_CONFIG and KRB5_KDC_PROFILE pointing into it (set in their own
// environment only), so /etc/krb5.conf and a system KDC play no part. A
// client takes the realm from Krb5Conf (gokrb5's config.NewFromString) or
// Krb5ConfPath.
type KDC struct {
	t     testing.TB
	dir   string
	realm string
	opts  kdcOptions

	mu      sync.Mutex
	port    int
	cmd     *exec.Cmd
	exited  chan struct{} // closed when krb5kdc exited
	stopped bool
	files   int // names the keytab and ccache files handed out
}

// KDCOption changes the realm NewKDC builds.
type KDCOption func(*kdcOptions)

type kdcOptions struct {
	realm        string
	maxLife      time.Duration
	maxRenewLife time.Duration
	preauth      bool
}

// KDCRealm sets the realm's name, overriding TEST.LOCAL.
func KDCRealm(name string) KDCOption {
	return func(o *kdcOptions) { o.realm = name }
}

// KDCMaxLife sets the longest life of a ticket the KDC issues (the realm's
// max_life and every principal's), overriding 10 hours. Clients ask for as
// long (Krb5Conf's ticket_lifetime). The KDC honours lifetimes of a minute,
// short enough for a test to watch a client renew or log in again.
func KDCMaxLife(d time.Duration) KDCOption {
	return func(o *kdcOptions) { o.maxLife = d }
}

// KDCRenewable sets how long a ticket can be renewed (the realm's
// max_renewable_life, and Krb5Conf's renew_lifetime so clients ask for
// renewable tickets), overriding 7 days. Zero makes every ticket
// non-renewable: a client must log in again before its TGT expires.
func KDCRenewable(d time.Duration) KDCOption {
	return func(o *kdcOptions) { o.maxRenewLife = d }
}

// KDCWithoutPreauth creates principals without +requires_preauth, so the KDC
// answers an AS-REQ without a timestamp encrypted in the client's key. The
// default requires it, as Active Directory and most MIT sites do; then a
// wrong password fails with KDC_ERR_PREAUTH_FAILED, without it a client
// finds out only when it cannot decrypt the AS-REP.
func KDCWithoutPreauth() KDCOption {
	return func(o *kdcOptions) { o.preauth = false }
}

// kdcStartTimeout bounds each MIT program NewKDC runs and the wait for
// krb5kdc to listen.
const kdcStartTimeout = 20 * time.Second

// kdcMasterPassword protects the stash of a test realm's database.
const kdcMasterPassword = "soarkafka-test-master"

// kdcInstallHint says how to get the MIT programs a KDC needs.
const kdcInstallHint = "install MIT Kerberos (apt-get install krb5-kdc krb5-admin-server krb5-user, as scripts/test-deps.sh does)"

// NewKDC creates a realm (kdb5_util create), starts its krb5kdc (which dies
// with the test binary) and stops it when the test ends. The realm has no
// principal but its own krbtgt: add them with AddUser and AddService.
//
// When the MIT programs are missing, t is skipped with how to install them;
// with CI=true it fails instead, since a skip there would hide a gap.
func NewKDC(t testing.TB, opts ...KDCOption) *KDC {
	t.Helper()
	o := kdcOptions{realm: "TEST.LOCAL", maxLife: 10 * time.Hour, maxRenewLife: 7 * 24 * time.Hour, preauth: true}
	for _, opt := range opts {
		opt(&o)
	}
	for _, prog := range []string{"krb5kdc", "kdb5_util", "kadmin.local", "kinit"} {
		if _, err := krb5Program(prog); err != nil {
			msg := "testenv: Kerberos KDC unavailable (" + err.Error() + "); " + kdcInstallHint
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}

	k := &KDC{t: t, dir: t.TempDir(), realm: o.realm, opts: o}
	t.Cleanup(k.Stop)
	k.writeConfig(freeKDCPort(t))
	if out, err := k.run(nil, "kdb5_util", "create", "-s", "-r", k.realm, "-P", kdcMasterPassword); err != nil {
		t.Fatalf("testenv: create realm %s: %v\n%s", k.realm, err, out)
	}
	// Another process may take the port between freeKDCPort and krb5kdc's
	// bind; then try another.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			k.writeConfig(freeKDCPort(t))
		}
		if err = k.start(); err == nil {
			return k
		}
	}
	t.Fatalf("testenv: start krb5kdc for %s: %v", k.realm, err)
	return nil
}

// Realm returns the realm's name, TEST.LOCAL unless KDCRealm said otherwise.
func (k *KDC) Realm() string { return k.realm }

// Addr returns the KDC's address, 127.0.0.1:PORT (UDP and TCP).
func (k *KDC) Addr() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port))
}

// Dir returns the directory holding the realm: its configuration, database,
// logs (kdc.log), and the keytabs and caches handed out.
func (k *KDC) Dir() string { return k.dir }

// Krb5ConfPath returns the path of the krb5.conf that Krb5Conf returns, for
// a client that takes a file (and what the MIT programs run with).
func (k *KDC) Krb5ConfPath() string { return filepath.Join(k.dir, "krb5.conf") }

// Krb5Conf returns the text of a krb5.conf for this realm: it is the
// default realm, its KDC is Addr, DNS is never asked, and clients request
// tickets as long and as renewable as the KDC issues.
func (k *KDC) Krb5Conf() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.krb5Conf()
}

func (k *KDC) krb5Conf() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[libdefaults]\n")
	fmt.Fprintf(&b, "  default_realm = %s\n", k.realm)
	fmt.Fprintf(&b, "  dns_lookup_kdc = false\n")
	fmt.Fprintf(&b, "  dns_lookup_realm = false\n")
	fmt.Fprintf(&b, "  rdns = false\n")
	fmt.Fprintf(&b, "  ticket_lifetime = %d\n", seconds(k.opts.maxLife))
	if k.opts.maxRenewLife > 0 {
		fmt.Fprintf(&b, "  renew_lifetime = %d\n", seconds(k.opts.maxRenewLife))
	}
	fmt.Fprintf(&b, "\n[realms]\n")
	fmt.Fprintf(&b, "  %s = {\n", k.realm)
	fmt.Fprintf(&b, "    kdc = 127.0.0.1:%d\n", k.port)
	fmt.Fprintf(&b, "  }\n")
	return b.String()
}

// AddUser adds the principal name (in this realm unless it names one) with
// a password that logs in.
func (k *KDC) AddUser(name, password string) {
	k.t.Helper()
	if strings.ContainsAny(password, "\"\\\n") {
		k.t.Fatalf("testenv: AddUser(%q): a test password must not hold a quote, a backslash or a newline", name)
	}
	k.kadmin(fmt.Sprintf("addprinc -pw \"%s\" %s", password, name), "created.")
}

// AddService adds the service principal (as kafka/127.0.0.1, the name a
// client asks a ticket for to reach a kfake broker) with a random key and
// returns the path of a keytab holding that key, for a broker.
func (k *KDC) AddService(principal string) string {
	k.t.Helper()
	k.kadmin("addprinc -randkey "+principal, "created.")
	return k.keytabFile(principal)
}

// Keytab returns a keytab with the keys of principal, a user's or a
// service's. The keys stay the same (ktadd -norandkey): a user's password
// keeps working.
func (k *KDC) Keytab(principal string) []byte {
	k.t.Helper()
	path := k.keytabFile(principal)
	b, err := os.ReadFile(path)
	if err != nil {
		k.t.Fatalf("testenv: read keytab of %s: %v", principal, err)
	}
	return b
}

// KeytabFile writes a keytab with the keys of principal (as Keytab does)
// into the realm's directory and returns its path.
func (k *KDC) KeytabFile(principal string) string {
	k.t.Helper()
	return k.keytabFile(principal)
}

func (k *KDC) keytabFile(principal string) string {
	k.t.Helper()
	path := k.newFile("keytab", principal)
	k.kadmin(fmt.Sprintf("ktadd -norandkey -k %s %s", path, principal), "added to keytab")
	return path
}

// Kinit logs principal in with its password, as a site's `kinit -c FILE`
// does, and returns the path of the credential cache (a FILE ccache, as
// gokrb5's credentials.LoadCCache reads) that holds its TGT.
func (k *KDC) Kinit(principal, password string) string {
	k.t.Helper()
	path := k.newFile("ccache", principal)
	if out, err := k.run(strings.NewReader(password+"\n"), "kinit", "-c", "FILE:"+path, principal); err != nil {
		k.t.Fatalf("testenv: kinit %s: %v\n%s", principal, err, out)
	}
	return path
}

// Stop stops the KDC, as an outage would: a client that needs a ticket then
// finds nothing listening. Stopping twice is harmless; the test's end stops
// it too.
func (k *KDC) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped || k.cmd == nil {
		k.stopped = true
		return
	}
	k.stopped = true
	k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(5 * time.Second):
		k.cmd.Process.Kill()
		<-k.exited
	}
}

// Log returns what krb5kdc logged so far (one line per request: who asked
// for what, and the error if any).
func (k *KDC) Log() string {
	b, _ := os.ReadFile(filepath.Join(k.dir, "kdc.log"))
	return string(b)
}

// newFile returns a new path in the realm's directory for a file about
// principal.
func (k *KDC) newFile(kind, principal string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.files++
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, principal)
	return filepath.Join(k.dir, fmt.Sprintf("%s-%d-%s", safe, k.files, kind))
}

// kadmin runs one kadmin.local query and fails the test unless its output
// holds success: kadmin.local exits 0 when a query fails.
func (k *KDC) kadmin(query, success string) {
	k.t.Helper()
	out, err := k.run(nil, "kadmin.local", "-r", k.realm, "-q", query)
	if err != nil || !strings.Contains(out, success) {
		// The query may hold a test password: name only the command.
		cmd, _, _ := strings.Cut(query, " ")
		k.t.Fatalf("testenv: kadmin.local %s in %s failed (err %v):\n%s", cmd, k.realm, err, out)
	}
}

// run runs an MIT program with the realm's configuration and returns its
// combined output.
func (k *KDC) run(stdin *strings.Reader, prog string, args ...string) (string, error) {
	path, err := krb5Program(prog)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), kdcStartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = k.env()
	cmd.Dir = k.dir
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// env is the environment of the MIT programs: the process's own without
// any Kerberos setting, plus the realm's files.
func (k *KDC) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KRB5") {
			env = append(env, kv)
		}
	}
	return append(env,
		"KRB5_CONFIG="+k.Krb5ConfPath(),
		"KRB5_KDC_PROFILE="+filepath.Join(k.dir, "kdc.conf"),
		"KRB5CCNAME=FILE:"+filepath.Join(k.dir, "default.ccache"),
		"KRB5_KTNAME=FILE:"+filepath.Join(k.dir, "default.keytab"),
		"KRB5RCACHEDIR="+k.dir,
	)
}

// writeConfig writes krb5.conf and kdc.conf for a KDC on port.
func (k *KDC) writeConfig(port int) {
	k.t.Helper()
	k.mu.Lock()
	k.port = port
	krb5 := k.krb5Conf()
	k.mu.Unlock()

	renew := seconds(k.opts.maxRenewLife)
	flags := "-preauth"
	if k.opts.preauth {
		flags = "+preauth"
	}
	// kdc_listen and kdc_tcp_listen bind 127.0.0.1 only (kdc_ports alone
	// binds every address).
	kdc := fmt.Sprintf(`[realms]
  %[1]s = {
    database_name = %[2]s/principal
    key_stash_file = %[2]s/stash
    acl_file = %[2]s/kadm5.acl
    kdc_ports = %[3]d
    kdc_tcp_ports = %[3]d
    kdc_listen = 127.0.0.1:%[3]d
    kdc_tcp_listen = 127.0.0.1:%[3]d
    max_life = %[4]d
    max_renewable_life = %[5]d
    master_key_type = aes256-cts-hmac-sha1-96
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    default_principal_flags = %[6]s
  }

[logging]
  kdc = FILE:%[2]s/kdc.log
  admin_server = FILE:%[2]s/kadmin.log
  default = FILE:%[2]s/krb5.log
`, k.realm, k.dir, port, seconds(k.opts.maxLife), renew, flags)

	for name, text := range map[string]string{"krb5.conf": krb5, "kdc.conf": kdc, "kadm5.acl": ""} {
		if err := os.WriteFile(filepath.Join(k.dir, name), []byte(text), 0o600); err != nil {
			k.t.Fatalf("testenv: write %s: %v", name, err)
		}
	}
}

// start starts krb5kdc and waits until it says it serves.
func (k *KDC) start() error {
	path, err := krb5Program("krb5kdc")
	if err != nil {
		return err
	}
	logPath := filepath.Join(k.dir, "kdc.log")
	os.Remove(logPath)
	cmd := exec.Command(path, "-n", "-r", k.realm, "-P", filepath.Join(k.dir, "kdc.pid"))
	cmd.Env = k.env()
	cmd.Dir = k.dir
	out := &LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = krb5kdcProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()

	deadline := time.Now().Add(kdcStartTimeout)
	for {
		log, _ := os.ReadFile(logPath)
		if strings.Contains(string(log), "commencing operation") {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("krb5kdc exited (%v):\n%s%s", cmd.ProcessState, out, log)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("krb5kdc did not start within %v:\n%s%s", kdcStartTimeout, out, log)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cmd, k.exited = cmd, exited
	return nil
}

// krb5Program finds an MIT program: in PATH, or in the sbin directories
// Debian installs the KDC's into and a user's PATH may lack.
func krb5Program(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New(name + " not found in PATH nor /usr/sbin")
}

// freeKDCPort returns a port of 127.0.0.1 free for both TCP and UDP.
func freeKDCPort(t testing.TB) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: listen: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatalf("testenv: no port of 127.0.0.1 free for both TCP and UDP")
	return 0
}

// seconds renders d as whole seconds, which both MIT's and gokrb5's
// configuration parsers read.
func seconds(d time.Duration) int64 { return int64(d / time.Second) }
