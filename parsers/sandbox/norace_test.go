//go:build !race

package sandbox

// oom is how a worker dies of its memory limit.
const oom = `fatal error: runtime: out of memory`

const raceEnabled = false
