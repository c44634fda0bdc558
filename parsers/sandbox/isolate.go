package sandbox

import (
	"log/slog"
	"strings"
	"sync"
)

// Layer is one operating-system isolation layer of a parser worker, on top
// of what the interpreter's import allow-list already refuses. The layers
// are independent: each refuses on its own what a script that escaped the
// interpreter would try first (see docs/security.md).
type Layer uint32

const (
	// LayerUser: the worker runs as an unprivileged user with no
	// supplementary groups (the server, when root, drops it to Config.UID
	// and Config.GID; a server that is not root starts it as itself).
	LayerUser Layer = 1 << iota
	// LayerNoNewPrivs: PR_SET_NO_NEW_PRIVS on every thread of the worker,
	// so that no execve could ever gain privileges (set-user-ID files,
	// file capabilities).
	LayerNoNewPrivs
	// LayerSeccomp: a seccomp allow-list of the system calls the Go runtime
	// and the interpreter need; everything else fails with EPERM.
	LayerSeccomp
	// LayerLandlock: a Landlock domain that grants no file access at all,
	// no TCP bind or connect, and (from ABI 6) no signals or abstract
	// sockets outside the worker.
	LayerLandlock
	// LayerNetNS: the worker runs in a network namespace of its own, which
	// has only a loopback interface that is down.
	LayerNetNS
)

// AllLayers are all the layers a worker asks for.
const AllLayers = LayerUser | LayerNoNewPrivs | LayerSeccomp | LayerLandlock | LayerNetNS

// workerLayers are the layers the worker applies to itself; the parent
// applies the others when it starts it.
const workerLayers = LayerNoNewPrivs | LayerSeccomp | LayerLandlock

var layerNames = []struct {
	l    Layer
	name string
}{
	{LayerUser, "user"},
	{LayerNoNewPrivs, "no_new_privs"},
	{LayerSeccomp, "seccomp"},
	{LayerLandlock, "landlock"},
	{LayerNetNS, "netns"},
}

// String lists the layers by name, comma-separated ("" for none).
func (l Layer) String() string {
	var names []string
	for _, n := range layerNames {
		if l&n.l != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// Isolation is what a worker runs with.
type Isolation struct {
	// Active are the layers in force.
	Active Layer
	// Missing are the layers this kernel or container does not give; Notes
	// say why.
	Missing Layer
	// LandlockABI is the kernel's Landlock ABI version (0: none).
	LandlockABI int
	// UID and GID are the worker's user and group.
	UID, GID int
	// Notes say why a layer is missing, and how an active one applies
	// ("user: the server is not root; the worker runs as uid 1000").
	Notes []string
}

// String is the one-line summary that logs and tests print.
func (i Isolation) String() string {
	s := "active: " + orNone(i.Active.String())
	if i.Missing != 0 {
		s += "; missing: " + i.Missing.String()
	}
	if len(i.Notes) > 0 {
		s += " (" + strings.Join(i.Notes, "; ") + ")"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// isolationLogged makes the isolation line appear once per process, at the
// first worker start: what the kernel gives does not change while the
// server runs, and every worker would otherwise repeat it.
var isolationLogged sync.Once

func logIsolation(logger *slog.Logger, iso Isolation) {
	isolationLogged.Do(func() {
		if logger == nil {
			logger = slog.Default()
		}
		attrs := []any{
			slog.String("active", orNone(iso.Active.String())),
			slog.Int("uid", iso.UID), slog.Int("gid", iso.GID),
			slog.Int("landlock_abi", iso.LandlockABI),
		}
		if len(iso.Notes) > 0 {
			attrs = append(attrs, slog.String("notes", strings.Join(iso.Notes, "; ")))
		}
		if iso.Missing != 0 {
			logger.Warn("parser worker isolation: some layers are not available on this system; workers run without them",
				append(attrs, slog.String("missing", iso.Missing.String()))...)
			return
		}
		logger.Info("parser worker isolation", attrs...)
	})
}
