//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	// A worker cannot read /usr/share/zoneinfo under Landlock: time's
	// embedded copy then answers time.LoadLocation, as before.
	_ "time/tzdata"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/landlock-lsm/go-landlock/landlock"
	llsyscall "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/psx"
)

// nobody is the user and group a worker drops to by default.
const nobody = 65534

// netnsRefused is set once creating a network namespace has failed for
// lack of privilege or kernel support: the answer does not change while
// the process runs, and each failed attempt costs a fork.
var netnsRefused atomic.Bool

// startIsolated starts the command that build returns with the layers the
// parent applies: the unprivileged user (when the server is root) and a
// network namespace of its own (where permitted; if the kernel refuses,
// it starts again without one). dir is the worker's directory, given to
// the worker's user.
func startIsolated(cfg Config, dir string, build func() *exec.Cmd) (*exec.Cmd, Isolation, error) {
	var iso Isolation
	var cred *syscall.Credential
	path := ""
	switch {
	case cfg.parentOff&LayerUser != 0:
		iso.UID, iso.GID = os.Geteuid(), os.Getegid()
		iso.Missing |= LayerUser
		iso.Notes = append(iso.Notes, "user: off for a test")
	case os.Geteuid() == 0:
		uid, gid := cfg.UID, cfg.GID
		if uid == 0 {
			uid = nobody
		}
		if gid == 0 {
			gid = nobody
		}
		// An empty Groups clears the supplementary groups (setgroups(0)).
		cred = &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			return nil, iso, fmt.Errorf("give the worker directory to uid %d: %w", uid, err)
		}
		// The worker's user may not be able to reach the binary through
		// its path (a test binary under a 0700 directory): the kernel
		// follows /proc/self/exe without a path walk.
		if sameFile(cfg.Exe, "/proc/self/exe") {
			path = "/proc/self/exe"
		}
		iso.UID, iso.GID = int(uid), int(gid)
		iso.Active |= LayerUser
		iso.Notes = append(iso.Notes, fmt.Sprintf("user: dropped from root to uid %d gid %d, no supplementary groups", uid, gid))
	default:
		iso.UID, iso.GID = os.Geteuid(), os.Getegid()
		iso.Active |= LayerUser
		iso.Notes = append(iso.Notes, fmt.Sprintf("user: the server is not root; the worker runs as its uid %d", iso.UID))
	}
	start := func(netns bool) (*exec.Cmd, error) {
		cmd := build()
		if path != "" {
			cmd.Path = path
		}
		cmd.SysProcAttr.Credential = cred
		if netns {
			cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWNET
		}
		return cmd, cmd.Start()
	}
	switch {
	case cfg.parentOff&LayerNetNS != 0:
		iso.Notes = append(iso.Notes, "netns: off for a test")
	case !netnsRefused.Load():
		cmd, err := start(true)
		if err == nil {
			iso.Active |= LayerNetNS
			return cmd, iso, nil
		}
		if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EUSERS) {
			return nil, iso, err
		}
		if !errors.Is(err, syscall.ENOSPC) { // ENOSPC: too many namespaces right now
			netnsRefused.Store(true)
		}
		iso.Notes = append(iso.Notes, fmt.Sprintf("netns: the kernel refused a network namespace (%v)", errors.Unwrap(err)))
	default:
		iso.Notes = append(iso.Notes, "netns: refused by the kernel at an earlier start")
	}
	iso.Missing |= LayerNetNS
	cmd, err := start(false)
	return cmd, iso, err
}

// sameFile reports whether two paths name the same file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// isolateWorker applies the worker's own layers (of want) to the running
// worker, best effort, and returns those in force, the kernel's Landlock
// ABI and notes on those that are not. It runs once the worker has opened
// all it will ever open (its pipes) and before it reads a script. The
// order matters: Landlock needs its own system calls, which the seccomp
// filter then refuses, so seccomp comes last.
func isolateWorker(want Layer) (active Layer, abi int, notes []string) {
	// time.Local is read from /etc/localtime on first use, which Landlock
	// would refuse: a script would silently get UTC.
	_, _ = time.Now().Zone()

	if want&LayerLandlock != 0 {
		v, err := llsyscall.LandlockGetABIVersion()
		switch {
		case err != nil || v < 1:
			notes = append(notes, fmt.Sprintf("landlock: not supported by this kernel or not enabled at boot (%v)", err))
		default:
			abi = v
			// No rules: every file access right the ABI knows, TCP bind
			// and connect, and the IPC scopes are all refused.
			if err := landlock.V11.BestEffort().Restrict(); err != nil {
				notes = append(notes, fmt.Sprintf("landlock: %v", err))
			} else {
				active |= LayerLandlock
			}
		}
	}

	// Seccomp and no_new_privs are set on one locked thread; the filter's
	// TSYNC flag then puts both on every other thread of the process, and
	// the threads started later inherit them.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if want&(LayerNoNewPrivs|LayerSeccomp) != 0 {
		if err := setNoNewPrivs(); err != nil {
			notes = append(notes, fmt.Sprintf("no_new_privs: %v", err))
		}
	}
	// Checked before the filter, which refuses prctl.
	if v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil && v == 1 {
		active |= LayerNoNewPrivs
	}
	if want&LayerSeccomp != 0 {
		if err := loadSeccomp(); err != nil {
			notes = append(notes, fmt.Sprintf("seccomp: %v", err))
		} else {
			active |= LayerSeccomp
		}
	}
	return active, abi, notes
}

// setNoNewPrivs sets no_new_privs on every thread. psx does it in builds
// with cgo too, where syscall.AllThreadsSyscall is not available.
func setNoNewPrivs() error {
	if _, _, errno := psx.Syscall6(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// loadSeccomp installs the worker's filter on all threads.
func loadSeccomp() error {
	policy, err := seccompPolicy(os.Getpid())
	if err != nil {
		return err
	}
	if !seccomp.Supported() {
		return errors.New("not supported by this kernel")
	}
	return seccomp.LoadFilter(seccomp.Filter{NoNewPrivs: true, Flag: seccomp.FilterFlagTSync, Policy: policy})
}

// allowedSyscalls are the system calls a worker makes once it serves
// scripts: the Go runtime's (memory, threads, signals, timers, the
// scheduler's futexes and netpoller), reading requests on stdin and
// writing replies, logs and faults on stdout and stderr. Names that an
// architecture does not have (open, epoll_wait on arm64) are skipped.
// Everything else fails with EPERM: sockets, execve, fork, ptrace, mount,
// setuid, file creation and writes.
//
// The filter tests the names in this order, one comparison each: the
// calls a busy worker makes most come first.
var allowedSyscalls = []string{
	// the hot path of a call: the scheduler, the pipes, the collector
	"futex", "read", "write", "epoll_pwait", "nanosleep", "sched_yield", "getpid", "madvise", "mmap", "munmap",
	// memory
	"brk", "mremap", "mprotect", "mincore",
	// threads and scheduling (clone: below, threads only)
	"set_robust_list", "rseq", "set_tid_address", "arch_prctl",
	"sched_getaffinity", "gettid", "exit", "exit_group",
	"restart_syscall",
	// signals (kill, tgkill: below, to itself only)
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	// time and timers (the CPU profiler of a test worker among them)
	"clock_gettime", "clock_getres", "clock_nanosleep", "gettimeofday", "time",
	"timer_create", "timer_settime", "timer_delete", "setitimer", "getitimer",
	// the pipes and the netpoller
	"readv", "pread64", "writev", "close", "fcntl",
	"fstat", "newfstatat", "lseek",
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait2",
	"eventfd2", "pipe2", "poll", "ppoll",
	// other
	"getrandom", "uname", "getcwd", "getrlimit", "getuid", "geteuid", "getgid", "getegid",
}

// writeFlags are the open flags that could create, change or write a file.
const writeFlags = unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC | unix.O_APPEND

// seccompPolicy is the worker's filter for the process pid.
func seccompPolicy(pid int) (seccomp.Policy, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return seccomp.Policy{}, err
	}
	var names []string
	for _, n := range allowedSyscalls {
		if _, ok := info.SyscallNames[n]; ok {
			names = append(names, n)
		}
	}
	cond := func(name string, c ...seccomp.Condition) []seccomp.NameWithConditions {
		if _, ok := info.SyscallNames[name]; !ok {
			return nil
		}
		return []seccomp.NameWithConditions{{Name: name, Conditions: c}}
	}
	self := uint64(pid)
	var withArgs []seccomp.NameWithConditions
	// A thread, not a process: fork and vfork fail.
	withArgs = append(withArgs, cond("clone", seccomp.Condition{Argument: 0, Operation: seccomp.BitsSet, Value: syscall.CLONE_THREAD})...)
	// Opening for reading is left to Landlock (which refuses it too, where
	// the kernel has it); opening to write or create never passes.
	withArgs = append(withArgs, cond("open", seccomp.Condition{Argument: 1, Operation: seccomp.BitsNotSet, Value: writeFlags})...)
	withArgs = append(withArgs, cond("openat", seccomp.Condition{Argument: 2, Operation: seccomp.BitsNotSet, Value: writeFlags})...)
	// The runtime signals its own threads (preemption) and raises signals
	// on itself when it crashes; never another process.
	withArgs = append(withArgs, cond("kill", seccomp.Condition{Argument: 0, Operation: seccomp.Equal, Value: self})...)
	withArgs = append(withArgs, cond("tgkill", seccomp.Condition{Argument: 0, Operation: seccomp.Equal, Value: self})...)
	// Reading a limit, never setting one.
	withArgs = append(withArgs, cond("prlimit64", seccomp.Condition{Argument: 2, Operation: seccomp.Equal, Value: 0})...)
	// The runtime names its memory mappings (PR_SET_VMA); no other prctl.
	withArgs = append(withArgs, cond("prctl", seccomp.Condition{Argument: 0, Operation: seccomp.Equal, Value: unix.PR_SET_VMA})...)
	groups := []seccomp.SyscallGroup{{Names: names, NamesWithCondtions: withArgs, Action: seccomp.ActionAllow}}
	// clone3 passes its flags in memory, out of a filter's sight: ENOSYS
	// makes the C library (a cgo or -race build) fall back to clone.
	if _, ok := info.SyscallNames["clone3"]; ok {
		groups = append(groups, seccomp.SyscallGroup{Names: []string{"clone3"}, Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS)})
	}
	return seccomp.Policy{DefaultAction: seccomp.ActionErrno, Syscalls: groups}, nil
}
