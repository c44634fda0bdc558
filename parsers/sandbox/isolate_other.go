//go:build !linux

package sandbox

import (
	"os/exec"
	"runtime"
)

// startIsolated starts the worker without isolation layers: they are
// Linux's (the server logs them as missing).
func startIsolated(cfg Config, dir string, build func() *exec.Cmd) (*exec.Cmd, Isolation, error) {
	cmd := build()
	iso := Isolation{Missing: LayerUser | LayerNetNS, Notes: []string{"user, netns: not available on " + runtime.GOOS}}
	return cmd, iso, cmd.Start()
}

// isolateWorker applies nothing: no_new_privs, seccomp and Landlock are
// Linux's.
func isolateWorker(want Layer) (Layer, int, []string) {
	return 0, 0, []string{"no_new_privs, seccomp, landlock: not available on " + runtime.GOOS}
}
