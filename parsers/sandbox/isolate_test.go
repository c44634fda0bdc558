//go:build linux

package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	llsyscall "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/soarkafka/soarkafka/parsers/bundled/defaultparser"
)

// The probe worker: a test worker that, once isolated, attempts each thing
// the layers must refuse and writes one line per attempt on its stderr
// ("probe <name> <errno name or ok or a value>"), then serves as usual.
// Only the test binary has it: a production worker has no such mode.
const (
	envTestProbe   = "SANDBOX_TEST_PROBE"   // the layers to apply, as a number (a Layer)
	envTestConnect = "SANDBOX_TEST_CONNECT" // host:port of a listener of the test, for connect
	envTestFile    = "SANDBOX_TEST_FILE"    // a file of the test's, for unlink
	// envTestSkip lists probes not to try: those that would harm the test
	// run if no layer refused them (execve replaces the worker, ptrace
	// stops it or the test, mount covers the host's /tmp).
	envTestSkip = "SANDBOX_TEST_SKIP"
)

// envTestSpawner makes the test binary a server stand-in that starts one
// worker, prints its pid and exits without stopping it.
const envTestSpawner = "SANDBOX_TEST_SPAWNER"

func spawnerMain() int {
	exe, err := os.Executable()
	if err != nil {
		return 2
	}
	w, err := Start(context.Background(), Config{Exe: exe, Env: []string{envTestWorker + "=1"}, Timeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// A sleeper holds the worker's stdin open, so that only the
	// parent-death signal, not an end of input, can end the worker.
	holder := osexec.Command("sleep", "30")
	holder.ExtraFiles = []*os.File{w.stdin}
	if err := holder.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println(w.Pid(), holder.Process.Pid)
	return 0
}

// dangerous are the probes that only a worker whose layers refuse them may
// try.
const dangerous = "execve,execveat,ptrace_traceme,ptrace_attach_parent,mount"

func probeWorkerMain() int {
	want, err := strconv.Atoi(os.Getenv(envTestProbe))
	if err != nil {
		os.Stderr.WriteString("probe: " + err.Error() + "\n")
		return 2
	}
	return workerMain(os.Stdin, os.Stdout, os.Stderr, Layer(want), runProbes)
}

func runProbes() {
	report := func(name string, errno syscall.Errno) {
		res := "ok"
		if errno != 0 {
			res = unix.ErrnoName(errno)
		}
		fmt.Fprintf(os.Stderr, "probe %s %s\n", name, res)
	}
	raw := func(trap uintptr, a ...uintptr) syscall.Errno {
		var args [6]uintptr
		copy(args[:], a)
		_, _, e := syscall.RawSyscall6(trap, args[0], args[1], args[2], args[3], args[4], args[5])
		return e
	}
	skip := map[string]bool{}
	for _, name := range strings.Split(os.Getenv(envTestSkip), ",") {
		skip[name] = true
	}
	try := func(name string, f func() syscall.Errno) {
		if !skip[name] {
			report(name, f())
		}
	}
	// The strings stay referenced in keep until the probes end.
	var keep []*byte
	str := func(s string) uintptr {
		p, _ := unix.BytePtrFromString(s)
		keep = append(keep, p)
		return uintptr(unsafe.Pointer(p))
	}
	defer runtime.KeepAlive(&keep)

	// Sockets: create one; connect and bind on it, or on stdin when the
	// socket was refused (then the refusal must come before ENOTSOCK).
	fd, _, e := syscall.RawSyscall(syscall.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)
	report("socket_inet", e)
	if e != 0 {
		fd = 0
	}
	addr := &unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: [4]byte{127, 0, 0, 1}}
	if hp := os.Getenv(envTestConnect); hp != "" {
		_, port, _ := net.SplitHostPort(hp)
		p, _ := strconv.Atoi(port)
		addr.Port = uint16(p>>8 | p<<8) // network byte order
	}
	report("connect", raw(syscall.SYS_CONNECT, fd, uintptr(unsafe.Pointer(addr)), unsafe.Sizeof(*addr)))
	bindAddr := &unix.RawSockaddrInet4{Family: unix.AF_INET, Port: 0x901f /* 8080 */, Addr: [4]byte{127, 0, 0, 1}}
	report("bind", raw(syscall.SYS_BIND, fd, uintptr(unsafe.Pointer(bindAddr)), unsafe.Sizeof(*bindAddr)))
	ufd, _, e := syscall.RawSyscall(syscall.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0)
	report("socket_unix", e)
	if e == 0 {
		syscall.Close(int(ufd))
	}
	if fd != 0 {
		syscall.Close(int(fd))
	}

	// Programs and processes. A successful execve would replace the worker
	// (no "probe-done" then); a successful fork's child leaves at once.
	prog, _ := unix.BytePtrFromString("/bin/true")
	argv := []*byte{prog, nil}
	try("execve", func() syscall.Errno {
		return raw(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(prog)), uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&argv[1])))
	})
	try("execveat", func() syscall.Errno {
		return raw(unix.SYS_EXECVEAT, uintptr(unix.AT_FDCWD&0xffffffff), uintptr(unsafe.Pointer(prog)), uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&argv[1])), 0)
	})
	runtime.KeepAlive(argv)
	pid, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if e == 0 && pid == 0 {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
	}
	report("fork", e)
	try("ptrace_traceme", func() syscall.Errno { return raw(syscall.SYS_PTRACE, syscall.PTRACE_TRACEME) })
	try("ptrace_attach_parent", func() syscall.Errno {
		return raw(syscall.SYS_PTRACE, syscall.PTRACE_ATTACH, uintptr(os.Getppid()))
	})
	report("kill_parent", raw(syscall.SYS_KILL, uintptr(os.Getppid()), 0))
	report("setuid_0", raw(syscall.SYS_SETUID, 0))
	try("mount", func() syscall.Errno { return raw(syscall.SYS_MOUNT, str("none"), str("/tmp"), str("tmpfs"), 0, 0) })
	report("unshare_user", raw(syscall.SYS_UNSHARE, syscall.CLONE_NEWUSER))

	// Files.
	path := filepath.Join("/tmp", "sandbox-probe-"+strconv.Itoa(os.Getpid()))
	wfd, _, e := syscall.RawSyscall6(syscall.SYS_OPENAT, uintptr(unix.AT_FDCWD&0xffffffff), str(path), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o600, 0, 0)
	report("open_write_tmp", e)
	if e == 0 {
		syscall.Close(int(wfd))
		syscall.Unlink(path)
	}
	rfd, _, e := syscall.RawSyscall6(syscall.SYS_OPENAT, uintptr(unix.AT_FDCWD&0xffffffff), str("/etc/passwd"), unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
	report("read_etc_passwd", e)
	if e == 0 {
		syscall.Close(int(rfd))
	}
	if f := os.Getenv(envTestFile); f != "" {
		report("unlink", raw(syscall.SYS_UNLINKAT, uintptr(unix.AT_FDCWD&0xffffffff), str(f), 0))
	}

	// What the filter costs one allowed system call (TestIsolationSyscallCost).
	const n = 20_000
	begin := time.Now()
	for range n {
		syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
	}
	fmt.Fprintf(os.Stderr, "probe getpid_ns %d\n", time.Since(begin).Nanoseconds()/n)

	uid, _, _ := syscall.RawSyscall(syscall.SYS_GETUID, 0, 0, 0)
	fmt.Fprintf(os.Stderr, "probe getuid %d\n", uid)
	fmt.Fprintf(os.Stderr, "probe-done\n")
}

// startProbe starts a probe worker applying want (and, from the parent,
// the user and network namespace layers) and returns it with its probe
// results.
func startProbe(t *testing.T, want Layer, connect string) (*Worker, map[string]string) {
	t.Helper()
	return startProbeConfig(t, testConfig(t), want, connect)
}

func startProbeConfig(t *testing.T, cfg Config, want Layer, connect string, skip ...string) (*Worker, map[string]string) {
	t.Helper()
	// A file of the test's (root's, under a 0700 directory, when the tests
	// run as root) that a worker running as root could delete.
	file := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Env = []string{envTestProbe + "=" + strconv.Itoa(int(want)), envTestFile + "=" + file, envTestSkip + "=" + strings.Join(skip, ",")}
	if connect != "" {
		cfg.Env = append(cfg.Env, envTestConnect+"="+connect)
	}
	w := startWorker(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.stderr.String(), "probe-done") {
		if time.Now().After(deadline) {
			t.Fatalf("no probe report; stderr:\n%s", w.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	res := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(w.stderr.String()))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "probe" {
			res[f[1]] = f[2]
		}
	}
	t.Logf("layers %s: isolation %s; probes %v", want, w.Isolation(), res)
	return w, res
}

func expectProbes(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if got[name] != w {
			t.Errorf("probe %s: %q, want %q", name, got[name], w)
		}
	}
}

// procStatus returns the fields of /proc/<pid>[/task/<tid>]/status.
func procStatus(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return out
}

var refusedBySeccomp = map[string]string{
	"socket_inet": "EPERM", "socket_unix": "EPERM", "connect": "EPERM", "bind": "EPERM",
	"execve": "EPERM", "execveat": "EPERM", "fork": "EPERM",
	"ptrace_traceme": "EPERM", "ptrace_attach_parent": "EPERM", "kill_parent": "EPERM",
	"setuid_0": "EPERM", "mount": "EPERM", "unshare_user": "EPERM",
	"open_write_tmp": "EPERM", "unlink": "EPERM",
}

// TestIsolationAllLayers: a production worker's layers (all of them) are
// in force on every thread of a live worker, each forbidden system call
// fails, and a normal parser still runs in it.
func TestIsolationAllLayers(t *testing.T) {
	w, got := startProbe(t, workerLayers, "")
	iso := w.Isolation()
	t.Logf("isolation on this kernel: %s (landlock ABI %d)", iso, iso.LandlockABI)

	// What this system gives must be in force: seccomp and no_new_privs
	// everywhere; Landlock where the kernel has it; the user drop and the
	// network namespace when the tests run as root (make test in a VM or a
	// container as root).
	want := LayerNoNewPrivs | LayerSeccomp | LayerUser
	if v, err := llsyscall.LandlockGetABIVersion(); err == nil && v >= 1 {
		want |= LayerLandlock
	}
	if os.Geteuid() == 0 {
		if run("unshare", "-n", "true") == nil {
			want |= LayerNetNS
		}
	}
	if iso.Active&want != want {
		t.Fatalf("active layers %s, want at least %s", iso.Active, want)
	}
	if iso.Active&iso.Missing != 0 || iso.Active|iso.Missing != AllLayers {
		t.Errorf("active %s and missing %s do not split the layers", iso.Active, iso.Missing)
	}

	expected := map[string]string{}
	for k, v := range refusedBySeccomp {
		expected[k] = v
	}
	if iso.Active&LayerLandlock != 0 {
		expected["read_etc_passwd"] = "EACCES" // seccomp lets reading through; Landlock refuses it
	}
	expectProbes(t, got, expected)
	if os.Geteuid() == 0 && got["getuid"] != "65534" {
		t.Errorf("worker uid %s, want 65534 (nobody)", got["getuid"])
	}

	// From outside: every thread has the filter and no_new_privs, the user
	// and groups are dropped.
	pid := strconv.Itoa(w.Pid())
	tasks, err := os.ReadDir("/proc/" + pid + "/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		st := procStatus(t, "/proc/"+pid+"/task/"+task.Name()+"/status")
		if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" {
			t.Errorf("thread %s: Seccomp %q NoNewPrivs %q, want 2 and 1", task.Name(), st["Seccomp"], st["NoNewPrivs"])
		}
	}
	st := procStatus(t, "/proc/"+pid+"/status")
	t.Logf("/proc/%s/status: Uid %s, Gid %s, Groups %q, NoNewPrivs %s, Seccomp %s, Seccomp_filters %s, threads %d",
		pid, st["Uid"], st["Gid"], st["Groups"], st["NoNewPrivs"], st["Seccomp"], st["Seccomp_filters"], len(tasks))
	if os.Geteuid() == 0 {
		if st["Uid"] != "65534 65534 65534 65534" || st["Gid"] != "65534 65534 65534 65534" || st["Groups"] != "" {
			t.Errorf("Uid %q Gid %q Groups %q, want nobody's and no groups", st["Uid"], st["Gid"], st["Groups"])
		}
		if st["CapEff"] != "0000000000000000" || st["CapPrm"] != "0000000000000000" {
			t.Errorf("capabilities CapEff %s CapPrm %s, want none", st["CapEff"], st["CapPrm"])
		}
	}
	if iso.Active&LayerNetNS != 0 {
		checkOwnNetNS(t, w.Pid())
	}

	// A normal parser still runs, more than once, under all of it.
	ctx := context.Background()
	if err := w.Load(ctx, "default", defaultparser.Source); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		res, err := w.Call(ctx, "events", sampleMessages(50, 200))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(res.Results), `"artifacts"`) {
			t.Fatalf("results %.200s", res.Results)
		}
	}
}

// run runs a command and returns its error.
func run(name string, args ...string) error {
	p, err := os.StartProcess("/usr/bin/"+name, append([]string{name}, args...), &os.ProcAttr{})
	if err != nil {
		return err
	}
	st, err := p.Wait()
	if err != nil {
		return err
	}
	if !st.Success() {
		return errors.New(st.String())
	}
	return nil
}

// checkOwnNetNS: the worker's network namespace is not the server's and
// has only a loopback interface, which is down.
func checkOwnNetNS(t *testing.T, pid int) {
	t.Helper()
	mine, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	its, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if mine == its {
		t.Errorf("worker in the server's network namespace %s", its)
	}
	dev, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	var ifaces []string
	for _, line := range strings.Split(string(dev), "\n")[2:] {
		if name, _, ok := strings.Cut(line, ":"); ok {
			ifaces = append(ifaces, strings.TrimSpace(name))
		}
	}
	if len(ifaces) != 1 || ifaces[0] != "lo" {
		t.Errorf("worker's interfaces %v, want only lo", ifaces)
	}
	route, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/route")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Split(strings.TrimSpace(string(route)), "\n")); n != 1 {
		t.Errorf("worker's namespace has %d routes, want none:\n%s", n-1, route)
	}
}

// alone returns a test config whose parent applies only the given parent
// layers.
func alone(t *testing.T, parent Layer) Config {
	cfg := testConfig(t)
	cfg.parentOff = (LayerUser | LayerNetNS) &^ parent
	return cfg
}

// listen starts a TCP listener on loopback for connect probes.
func listen(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

// TestIsolationNoLayers is the control for the tests of one layer each:
// with no layer, a worker started as root can do what the probes try
// (when the tests run as root), so each refusal below is the layer's.
func TestIsolationNoLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Log("not root: the control of the root-only refusals does not apply; checking the rest")
	}
	w, got := startProbeConfig(t, alone(t, 0), 0, listen(t), dangerous)
	if w.Isolation().Active&^LayerUser != 0 {
		t.Fatalf("layers in force with none asked: %s", w.Isolation())
	}
	expectProbes(t, got, map[string]string{
		"socket_inet": "ok", "connect": "ok", "socket_unix": "ok",
		"open_write_tmp": "ok", "read_etc_passwd": "ok", "unlink": "ok", "fork": "ok",
	})
	if os.Geteuid() == 0 {
		expectProbes(t, got, map[string]string{"getuid": "0", "setuid_0": "ok", "kill_parent": "ok"})
	}
}

// TestIsolationSeccompAlone: the filter alone (with the no_new_privs it
// needs), in a worker that runs as root in the server's network
// namespace, refuses every forbidden call; reading a file is Landlock's.
func TestIsolationSeccompAlone(t *testing.T) {
	w, got := startProbeConfig(t, alone(t, 0), LayerNoNewPrivs|LayerSeccomp, listen(t))
	if a := w.Isolation().Active; a&LayerSeccomp == 0 || a&LayerLandlock != 0 {
		t.Fatalf("layers %s", a)
	}
	expectProbes(t, got, refusedBySeccomp)
	expectProbes(t, got, map[string]string{"read_etc_passwd": "ok"})
	st := procStatus(t, "/proc/"+strconv.Itoa(w.Pid())+"/status")
	if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" {
		t.Errorf("Seccomp %q NoNewPrivs %q", st["Seccomp"], st["NoNewPrivs"])
	}
}

// TestIsolationNoNewPrivsAlone: no_new_privs on every thread, without a
// filter.
func TestIsolationNoNewPrivsAlone(t *testing.T) {
	w, _ := startProbeConfig(t, alone(t, 0), LayerNoNewPrivs, "", dangerous)
	if a := w.Isolation().Active; a&^LayerUser != LayerNoNewPrivs {
		t.Fatalf("layers %s", a)
	}
	pid := strconv.Itoa(w.Pid())
	tasks, err := os.ReadDir("/proc/" + pid + "/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		st := procStatus(t, "/proc/"+pid+"/task/"+task.Name()+"/status")
		if st["NoNewPrivs"] != "1" || st["Seccomp"] != "0" {
			t.Errorf("thread %s: NoNewPrivs %q Seccomp %q, want 1 and 0", task.Name(), st["NoNewPrivs"], st["Seccomp"])
		}
	}
}

// TestIsolationLandlockAlone: Landlock alone refuses reading, writing and
// running files, TCP connect and bind, and signals out of the worker,
// even to root.
func TestIsolationLandlockAlone(t *testing.T) {
	abi, err := llsyscall.LandlockGetABIVersion()
	if err != nil || abi < 1 {
		// Nothing to try: the worker must then say Landlock is missing.
		w, _ := startProbeConfig(t, alone(t, 0), LayerLandlock, "")
		if w.Isolation().Missing&LayerLandlock == 0 {
			t.Errorf("no Landlock on this kernel (%v), yet not reported missing: %s", err, w.Isolation())
		}
		return
	}
	w, got := startProbeConfig(t, alone(t, 0), LayerLandlock, listen(t), "ptrace_traceme")
	if a := w.Isolation().Active; a&LayerLandlock == 0 || a&LayerSeccomp != 0 {
		t.Fatalf("layers %s", a)
	}
	expectProbes(t, got, map[string]string{
		"read_etc_passwd": "EACCES", "open_write_tmp": "EACCES", "unlink": "EACCES",
		"execve": "EACCES", "execveat": "EACCES",
		"ptrace_attach_parent": "EPERM", "mount": "EPERM",
		"socket_inet": "ok", // not a Landlock right; the filter refuses it
	})
	if abi >= 4 {
		expectProbes(t, got, map[string]string{"connect": "EACCES", "bind": "EACCES"})
	}
	if abi >= 6 {
		expectProbes(t, got, map[string]string{"kill_parent": "EPERM"})
	}
}

// TestIsolationUserAlone: as root, the worker drops to nobody with no
// groups and cannot get root back; not as root, it keeps the user.
func TestIsolationUserAlone(t *testing.T) {
	skip := []string{"execve", "execveat", "ptrace_traceme"}
	if os.Geteuid() != 0 {
		// The worker runs as the test's own user: it could stop the test.
		skip = append(skip, "ptrace_attach_parent")
	}
	w, got := startProbeConfig(t, alone(t, LayerUser), 0, "", skip...)
	if w.Isolation().Active&LayerUser == 0 {
		t.Fatalf("layers %s", w.Isolation())
	}
	if os.Geteuid() != 0 {
		expectProbes(t, got, map[string]string{"getuid": strconv.Itoa(os.Geteuid()), "setuid_0": "EPERM", "mount": "EPERM"})
		return
	}
	expectProbes(t, got, map[string]string{
		"getuid": "65534", "setuid_0": "EPERM", "mount": "EPERM", "kill_parent": "EPERM",
		"ptrace_attach_parent": "EPERM", "unlink": "EACCES", "open_write_tmp": "ok", "read_etc_passwd": "ok",
	})
	st := procStatus(t, "/proc/"+strconv.Itoa(w.Pid())+"/status")
	if st["Uid"] != "65534 65534 65534 65534" || st["Groups"] != "" || st["CapEff"] != "0000000000000000" {
		t.Errorf("Uid %q Groups %q CapEff %q", st["Uid"], st["Groups"], st["CapEff"])
	}

	// A configured user and group.
	cfg := alone(t, LayerUser)
	cfg.UID, cfg.GID = 4242, 4343
	w, got = startProbeConfig(t, cfg, 0, "", "execve", "execveat", "ptrace_traceme")
	expectProbes(t, got, map[string]string{"getuid": "4242"})
	st = procStatus(t, "/proc/"+strconv.Itoa(w.Pid())+"/status")
	if st["Uid"] != "4242 4242 4242 4242" || st["Gid"] != "4343 4343 4343 4343" || st["Groups"] != "" {
		t.Errorf("Uid %q Gid %q Groups %q", st["Uid"], st["Gid"], st["Groups"])
	}
}

// TestIsolationNetNSAlone: in its own network namespace, a worker cannot
// reach the server's loopback (the connect that TestIsolationNoLayers made
// fails), and sees only a loopback interface that is down.
func TestIsolationNetNSAlone(t *testing.T) {
	w, got := startProbeConfig(t, alone(t, LayerNetNS), 0, listen(t), dangerous)
	iso := w.Isolation()
	if iso.Active&LayerNetNS == 0 {
		if os.Geteuid() == 0 && run("unshare", "-n", "true") == nil {
			t.Fatalf("no network namespace although this system gives one: %s", iso)
		}
		if iso.Missing&LayerNetNS == 0 {
			t.Fatalf("no network namespace, yet not reported missing: %s", iso)
		}
		t.Logf("no network namespace here (%s): checked that it is reported missing", iso)
		return
	}
	expectProbes(t, got, map[string]string{"socket_inet": "ok", "connect": "ENETUNREACH"})
	checkOwnNetNS(t, w.Pid())
}

// TestIsolationHostileScripts: a script cannot reach what the layers
// refuse through its imports either: the interpreter has no os, syscall,
// net or os/exec to give it (Check aside: these are loaded without it),
// and what the allowed packages read from disk (time zones) still works
// from the binary's own copy under Landlock.
func TestIsolationHostileScripts(t *testing.T) {
	ctx := context.Background()
	marker := filepath.Join(t.TempDir(), "written")
	for name, src := range map[string][2]string{
		"os":      {"os", "func init() { os.WriteFile(" + strconv.Quote(marker) + ", nil, 0o644) }"},
		"syscall": {"syscall", "func init() { syscall.Socket(2, 1, 0) }"},
		"net":     {"net", `func init() { net.Dial("tcp", "127.0.0.1:1") }`},
		"exec":    {"os/exec", `func init() { exec.Command("/bin/sh", "-c", "touch ` + marker + `").Run() }`},
		"unsafe":  {"unsafe", "var p = unsafe.Pointer(nil)"},
	} {
		t.Run(name, func(t *testing.T) {
			w := startWorker(t, testConfig(t))
			err := w.load(ctx, "p.go", "package main\n\nimport "+strconv.Quote(src[0])+"\nimport \"github.com/soarkafka/soarkafka/soar\"\n\n"+src[1]+`
func ParseMessages(topic string, msgs []soar.Message) ([]soar.Result, error) { return nil, nil }
`)
			var script *ScriptError
			if !errors.As(err, &script) || script.Kind != faultCompile || !strings.Contains(err.Error(), `import "`+src[0]+`" error`) {
				t.Fatalf("load: %v", err)
			}
		})
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a script wrote %s (stat: %v)", marker, err)
	}

	w := startWorker(t, testConfig(t))
	if w.Isolation().Active&LayerLandlock == 0 {
		t.Logf("no Landlock here: time zones are read from disk as before")
	}
	if err := w.Load(ctx, "tz.go", body(`loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return nil, err
	}
	_, bad := time.LoadLocation("../../../etc/passwd")
	name := time.Date(2026, 7, 1, 12, 0, 0, 0, loc).Format(time.RFC3339)
	if bad != nil {
		name += " refused"
	}
	return []soar.Result{{Container: soar.Container{Name: name}}}, nil`)); err != nil {
		t.Fatal(err)
	}
	res, err := w.Call(ctx, "events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Results), "2026-07-01T12:00:00+02:00 refused") {
		t.Errorf("results %s", res.Results)
	}
}

// BenchmarkWorkerStartIsolation: what the layers add to a worker's start
// (a new network namespace is the costly one).
func BenchmarkWorkerStartIsolation(b *testing.B) {
	for _, c := range []struct {
		name      string
		parentOff Layer
	}{{"all", 0}, {"no-netns", LayerNetNS}, {"no-user-no-netns", LayerUser | LayerNetNS}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.parentOff = c.parentOff
			for b.Loop() {
				w, err := Start(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				w.Close()
			}
		})
	}
}

// TestIsolationSyscallCost: an allowed system call in a worker under every
// layer costs about what it costs in one with none (the filter is run on
// each call); printed for docs/security.md, and bounded loosely because
// the machine may be busy.
func TestIsolationSyscallCost(t *testing.T) {
	cost := func(want Layer) int {
		var best int
		for range 3 {
			_, got := startProbeConfig(t, alone(t, 0), want, "", dangerous)
			ns, err := strconv.Atoi(got["getpid_ns"])
			if err != nil {
				t.Fatal(got)
			}
			if best == 0 || ns < best {
				best = ns
			}
		}
		return best
	}
	none, all := cost(0), cost(workerLayers)
	t.Logf("getpid: %d ns with no layer, %d ns with no_new_privs, seccomp and landlock", none, all)
	if all > 2*none+1000 {
		t.Errorf("an allowed system call costs %d ns under the filter, %d ns without", all, none)
	}
}

// TestIsolationWorkerDiesWithServer: a worker that dropped to another user
// and lives in its own network namespace still dies with the server (the
// kernel clears the parent-death signal when credentials change; Start
// sets it after the drop).
func TestIsolationWorkerDiesWithServer(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := osexec.Command(exe)
	cmd.Env = append(os.Environ(), envTestSpawner+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spawner: %v: %s", err, out)
	}
	var pid, holder int
	if _, err := fmt.Sscan(string(out), &pid, &holder); err != nil {
		t.Fatalf("spawner printed %q", out)
	}
	t.Cleanup(func() { syscall.Kill(holder, syscall.SIGKILL) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return // gone
		}
		// A zombie waiting for init to reap it is dead too.
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("worker %d outlived its server: %s", pid, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
