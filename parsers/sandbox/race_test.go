//go:build race

package sandbox

// oom is how a worker dies of its memory limit. The test binary is the
// worker; built with -race, its ThreadSanitizer fails first.
const oom = `fatal error: (runtime: )?out of memory|ThreadSanitizer failed to allocate`

// raceEnabled: the test binary, and so the test workers, run with
// ThreadSanitizer, whose shadow memory counts in RLIMIT_DATA.
const raceEnabled = true
