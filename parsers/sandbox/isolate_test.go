//go:build linux

package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
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
)

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
	report("execve", raw(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(prog)), uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&argv[1]))))
	report("execveat", raw(unix.SYS_EXECVEAT, uintptr(unix.AT_FDCWD&0xffffffff), uintptr(unsafe.Pointer(prog)), uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&argv[1])), 0))
	runtime.KeepAlive(argv)
	pid, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if e == 0 && pid == 0 {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
	}
	report("fork", e)
	report("ptrace_traceme", raw(syscall.SYS_PTRACE, syscall.PTRACE_TRACEME))
	report("ptrace_attach_parent", raw(syscall.SYS_PTRACE, syscall.PTRACE_ATTACH, uintptr(os.Getppid())))
	report("kill_parent", raw(syscall.SYS_KILL, uintptr(os.Getppid()), 0))
	report("setuid_0", raw(syscall.SYS_SETUID, 0))
	report("mount", raw(syscall.SYS_MOUNT, str("none"), str("/tmp"), str("tmpfs"), 0, 0))
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
	report("unlink", raw(syscall.SYS_UNLINKAT, uintptr(unix.AT_FDCWD&0xffffffff), str("/etc/hostname"), 0))

	uid, _, _ := syscall.RawSyscall(syscall.SYS_GETUID, 0, 0, 0)
	fmt.Fprintf(os.Stderr, "probe getuid %d\n", uid)
	fmt.Fprintf(os.Stderr, "probe-done\n")
}

// startProbe starts a probe worker applying want (and, from the parent,
// the user and network namespace layers) and returns it with its probe
// results.
func startProbe(t *testing.T, want Layer, connect string) (*Worker, map[string]string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Env = []string{envTestProbe + "=" + strconv.Itoa(int(want))}
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
